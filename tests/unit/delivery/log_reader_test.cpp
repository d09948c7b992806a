// The delivery log's reader (delivery_log.hpp), shared by `policy simulate` and `report`: which
// lines it accepts, the level each line shows, the counts of skipped and older lines, and a log
// that is absent (empty) or cannot be read (io_error).
#include <gtest/gtest.h>

#include <sstream>

#include "common/timefmt.hpp"
#include "delivery/delivery_log.hpp"
#include "temp_dir.hpp"

using namespace mailward;
using delivery::LogEntry;

namespace {

const std::string kVerifyTls =
    R"({"protocol":"TLSv1.3","cipher":"X","forward_secret":true,"chain_valid":true,"name_matched":true,"dane_matched":false})";

std::string line(const std::string& rcpt, const std::string& result, const std::string& mx, const std::string& tls,
                 const std::string& time = "2026-12-07T10:00:00Z") {
    return R"({"time":")" + time + R"(","queue_id":"Q1","recipient":")" + rcpt + R"(","mx":")" + mx +
           R"(","result":")" + result + R"(","tls":)" + tls + "}";
}

}  // namespace

TEST(LogReader, ParsesLinesAndTheLevelTheyShow) {
    struct Case {
        std::string name, text;
        bool readable;
        std::string domain;
        std::optional<tls::Level> level;
    };
    const Case cases[] = {
        {"verify session", line("a@Example.NET", "delivered", "mx.example.net", kVerifyTls), true, "example.net",
         tls::Level::verify},
        {"dane session",
         line("a@d.example", "delivered", "mx",
              R"({"protocol":"TLSv1.3","forward_secret":true,"chain_valid":false,"dane_matched":true})"),
         true, "d.example", tls::Level::dane},
        {"encrypt session", line("a@e.example", "delivered", "mx", R"({"protocol":"TLSv1.2","forward_secret":true})"),
         true, "e.example", tls::Level::encrypt},
        {"old protocol is may", line("a@m.example", "delivered", "mx", R"({"protocol":"TLSv1"})"), true, "m.example",
         tls::Level::may},
        {"plaintext delivery", line("a@p.example", "delivered", "mx", "null"), true, "p.example", tls::Level::none},
        {"TLS policy failure at a host", line("a@p.example", "deferred-tls-policy", "mx", "null"), true, "p.example",
         tls::Level::none},
        {"connection failure tells nothing", line("a@p.example", "deferred", "mx", "null"), true, "p.example",
         std::nullopt},
        {"held without a host tells nothing", line("a@p.example", "awaiting-escrow", "", "null"), true, "p.example",
         std::nullopt},
        {"not JSON", "delivered to a@b.example", false, "", std::nullopt},
        {"JSON array", "[1,2]", false, "", std::nullopt},
        {"no time", R"({"recipient":"a@b.example"})", false, "", std::nullopt},
        {"bad time", line("a@b.example", "delivered", "mx", "null", "yesterday"), false, "", std::nullopt},
        {"no domain", line("a@", "delivered", "mx", "null"), false, "", std::nullopt},
        {"no at sign", line("postmaster", "delivered", "mx", "null"), false, "", std::nullopt},
        {"recipient not a string", R"({"time":"2026-12-07T10:00:00Z","recipient":7})", false, "", std::nullopt},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const auto e = delivery::parse_log_line(c.text);
        ASSERT_EQ(e.has_value(), c.readable);
        if (!e) continue;
        EXPECT_EQ(e->domain, c.domain);
        EXPECT_EQ(e->level_seen, c.level);
        EXPECT_EQ(e->queue_id, "Q1");
    }
}

TEST(LogReader, CountsSkippedAndOlderLines) {
    const auto from = *common::parse_iso8601("2026-12-07T00:00:00Z");
    struct Case {
        std::string name, text;
        std::size_t seen, lines, skipped, before;
    };
    const Case cases[] = {
        {"empty log", "", 0, 0, 0, 0},
        {"blank lines are not lines", "\n  \n\r\n", 0, 0, 0, 0},
        {"one in the period", line("a@b.example", "delivered", "mx", "null") + "\n", 1, 1, 0, 0},
        {"malformed lines counted and skipped",
         "garbage\n{\"time\":1}\n" + line("a@b.example", "delivered", "mx", "null") + "\n", 1, 3, 2, 0},
        {"lines before the period",
         line("a@b.example", "delivered", "mx", "null", "2026-12-06T23:59:59Z") + "\n" +
             line("a@b.example", "delivered", "mx", "null", "2026-12-07T00:00:00Z"),
         1, 2, 0, 1},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        std::istringstream in(c.text);
        std::size_t seen = 0;
        const auto r = delivery::read_log(in, from, [&](const LogEntry&) { ++seen; });
        ASSERT_TRUE(r);
        EXPECT_EQ(seen, c.seen);
        EXPECT_EQ(r->lines, c.lines);
        EXPECT_EQ(r->skipped, c.skipped);
        EXPECT_EQ(r->before, c.before);
    }
}

TEST(LogReader, AbsentFileIsEmptyUnreadableIsAnError) {
    test::TempDir dir;
    std::size_t seen = 0;
    auto each = [&](const LogEntry&) { ++seen; };
    const auto absent = delivery::read_log(dir.path() / "delivery.log", {}, each);
    ASSERT_TRUE(absent);
    EXPECT_EQ(absent->lines, 0u);
    std::filesystem::create_directory(dir.path() / "dir.log");
    const auto d = delivery::read_log(dir.path() / "dir.log", {}, each);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error(), common::Errc::io_error);
    const auto f = dir.write("ok.log", line("a@b.example", "delivered", "mx", "null") + "\n");
    const auto ok = delivery::read_log(f, {}, each);
    ASSERT_TRUE(ok);
    EXPECT_EQ(seen, 1u);
}
