// serve's daily TLS-RPT run (tlsrpt/send.hpp DailySender) against a real SQLite store and a fake
// resolver: the previous UTC day's reports are claimed and queued as mailward's own mail (mailto:),
// a domain without a record is claimed and not sent, today's counts wait, days past the retention
// are purged; and send_day() says what it did for a bad record and an already sent report.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "config/config.hpp"
#include "store/store.hpp"
#include "support/fake_resolver.hpp"
#include "temp_dir.hpp"
#include "tlsrpt/send.hpp"

using namespace mailward;
using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

namespace {

store::TlsRptCount count(const std::string& day, const std::string& domain) {
    return {day, domain, "no-policy-found", "", "", "", "", "", "", 2};
}

dns::TxtAnswer txt(std::string text) {
    dns::TxtAnswer a;
    a.texts.push_back(std::move(text));
    return a;
}

struct DailyFixture : ::testing::Test {
    test::TempDir dir;
    std::unique_ptr<store::Store> st;
    dns::FakeResolver resolver;
    tlsrpt::SendOptions options;
    void SetUp() override {
        config::Config cfg;
        cfg.server.data_dir = dir.path();
        auto s = store::open(cfg);
        ASSERT_TRUE(s) << s.error().message();
        st = std::move(*s);
        options.organization = "Org";
        options.contact = "postmaster@relay.example.test";
        options.from = "postmaster@relay.example.test";
        options.submitter = "relay.example.test";
        options.sender_mode = "tls-or-escrow";
    }
    void TearDown() override {
        if (st) st->close();
    }
};

}  // namespace

TEST_F(DailyFixture, SendsThePreviousDayOnceAndPurgesOldDays) {
    const auto now = Clock::now();
    const std::string today = tlsrpt::utc_day(now);
    const std::string yesterday = tlsrpt::utc_day(now - 24h);
    const std::string old = tlsrpt::utc_day(now - 24h * (tlsrpt::kRetentionDays + 2));
    ASSERT_TRUE(st->policy().add_tlsrpt({count(yesterday, "a.example"), count(yesterday, "b.example"),
                                         count(today, "c.example"), count(old, "d.example")}));
    resolver.txt_answers["_smtp._tls.a.example"] = txt("v=TLSRPTv1; rua=mailto:reports@a.example");
    boost::asio::io_context io;
    boost::asio::thread_pool pool(1);
    {
        tlsrpt::DailySender sender(*st, resolver, pool, options, 0);  // hour 0: due at once
        sender.start(io.get_executor());
        io.run_for(3s);
        sender.stop();
        io.restart();
        io.run_for(1s);
    }
    pool.join();
    auto queued = st->queue().list();
    ASSERT_TRUE(queued);
    ASSERT_EQ(queued->size(), 1u);
    auto env = st->queue().envelope((*queued)[0].id);
    ASSERT_TRUE(env);
    EXPECT_EQ(env->sender, "postmaster@relay.example.test");
    EXPECT_EQ(env->recipients[0].address, "reports@a.example");
    EXPECT_EQ(env->client_helo, "tlsrpt");
    auto body = st->queue().body((*queued)[0].id);
    ASSERT_TRUE(body);
    EXPECT_NE(body->find("TLS-Report-Domain: a.example\r\n"), std::string::npos);
    for (const char* d : {"a.example", "b.example"}) {
        auto again = st->policy().claim_tlsrpt(yesterday, d, "x", now);
        ASSERT_TRUE(again);
        EXPECT_FALSE(*again) << d << " was claimed by the daily run";
    }
    auto later = st->policy().claim_tlsrpt(today, "c.example", "x", now);
    ASSERT_TRUE(later);
    EXPECT_TRUE(*later) << "today's report waits for tomorrow";
    auto purged = st->policy().tlsrpt_day(old);
    ASSERT_TRUE(purged);
    EXPECT_TRUE(purged->empty()) << "older than the retention";
    auto kept = st->policy().tlsrpt_day(yesterday);
    ASSERT_TRUE(kept);
    EXPECT_EQ(kept->size(), 2u);
}

TEST_F(DailyFixture, SendDaySaysWhatItDid) {
    const auto now = Clock::now();
    const std::string day = "2026-12-01";
    ASSERT_TRUE(st->policy().add_tlsrpt({count(day, "bad.example"), count(day, "none.example")}));
    resolver.txt_answers["_smtp._tls.bad.example"] = txt("v=TLSRPTv1; rua=ftp://x.example/");
    boost::asio::io_context io;
    boost::asio::thread_pool pool(1);
    auto run = [&](std::string d) {
        std::vector<tlsrpt::SendLine> lines;
        boost::asio::co_spawn(io, tlsrpt::send_day(*st, resolver, pool, options, d, now),
                              [&lines](std::exception_ptr e, std::vector<tlsrpt::SendLine> l) {
                                  if (!e) lines = std::move(l);
                              });
        io.restart();
        io.run();
        return lines;
    };
    auto first = run(day);
    ASSERT_EQ(first.size(), 2u);
    EXPECT_EQ(first[0].text, "bad.example: not sent: no mailto: or https: URI in rua (ftp://x.example/)");
    EXPECT_EQ(first[1].text.rfind("none.example: not sent: ", 0), 0u) << first[1].text;
    for (const auto& l : first) EXPECT_FALSE(l.sent || l.failed) << l.text;
    auto second = run(day);
    ASSERT_EQ(second.size(), 2u);
    EXPECT_EQ(second[0].text, "bad.example: already sent");
    auto bad_day = run("2026-13-01");
    ASSERT_EQ(bad_day.size(), 1u);
    EXPECT_TRUE(bad_day[0].failed);
    pool.join();
}
