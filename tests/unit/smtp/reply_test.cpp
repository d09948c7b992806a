// Table-driven tests of reply formatting (Reply::wire, Reply::summary) and of the client-side
// multi-line ReplyParser with enhanced status codes (RFC 5321 4.2, RFC 2034).
#include "smtp/reply.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace mailward::smtp;

namespace {

Reply make(int code, std::string enh, std::vector<std::string> lines) {
    Reply r;
    r.code = code;
    r.enhanced = std::move(enh);
    r.lines = std::move(lines);
    return r;
}

TEST(Reply, FormatsWireAndSummary) {
    struct Case {
        Reply reply;
        std::string wire;
        std::string summary;
    };
    const Case cases[] = {
        {Reply(250, "2.1.0", "Sender ok"), "250 2.1.0 Sender ok\r\n", "250 2.1.0 Sender ok"},
        {Reply(220, "", "mx.example ESMTP"), "220 mx.example ESMTP\r\n", "220 mx.example ESMTP"},
        {Reply(354, "", "End data with <CR><LF>.<CR><LF>"), "354 End data with <CR><LF>.<CR><LF>\r\n",
         "354 End data with <CR><LF>.<CR><LF>"},
        {make(250, "", {"mx.example", "PIPELINING", "SIZE 10240000", "8BITMIME"}),
         "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n",
         "250 mx.example; PIPELINING; SIZE 10240000; 8BITMIME"},
        {make(550, "5.1.1", {"No such user", "try again"}), "550-5.1.1 No such user\r\n550 5.1.1 try again\r\n",
         "550 5.1.1 No such user; try again"},
        {make(250, "", {}), "250\r\n", "250"},
        {make(221, "2.0.0", {}), "221 2.0.0\r\n", "221 2.0.0"},
        {Reply(250, "", ""), "250\r\n", "250"},
        {make(250, "", {"", "last"}), "250-\r\n250 last\r\n", "250 ; last"},
        {Reply(501, "5.1.7", "bad\r\n250 injected"), "501 5.1.7 bad  250 injected\r\n", "501 5.1.7 bad  250 injected"},
        {Reply(500, "", std::string("nul\0here", 8)), "500 nul here\r\n", "500 nul here"},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(c.reply.wire(), c.wire) << c.summary;
        EXPECT_EQ(c.reply.summary(), c.summary);
    }
}

TEST(Reply, Classifies) {
    struct Case {
        int code;
        bool positive, transient, permanent;
    };
    const Case cases[] = {{250, true, false, false}, {354, true, false, false}, {421, false, true, false},
                          {451, false, true, false}, {550, false, false, true}, {599, false, false, true}};
    for (const auto& c : cases) {
        Reply r(c.code, "", "x");
        EXPECT_EQ(r.positive(), c.positive) << c.code;
        EXPECT_EQ(r.transient(), c.transient) << c.code;
        EXPECT_EQ(r.permanent(), c.permanent) << c.code;
    }
}

TEST(ReplyDeathTest, WireAbortsWithoutACode) { EXPECT_DEATH((void)Reply().wire(), ""); }

TEST(ReplyParser, ParsesReplies) {
    struct Case {
        std::vector<std::string> lines;
        int code;
        std::string enhanced;
        std::vector<std::string> text;
    };
    const Case cases[] = {
        {{"220 mx.example ESMTP Postfix"}, 220, "", {"mx.example ESMTP Postfix"}},
        {{"250-mx.example", "250-PIPELINING", "250 SMTPUTF8"}, 250, "", {"mx.example", "PIPELINING", "SMTPUTF8"}},
        {{"250 2.1.0 Ok"}, 250, "2.1.0", {"Ok"}},
        {{"550-5.1.1 The email account", "550-5.1.1 does not exist.", "550 5.1.1 See help"},
         550,
         "5.1.1",
         {"The email account", "does not exist.", "See help"}},
        {{"451 4.7.1 Greylisted, retry"}, 451, "4.7.1", {"Greylisted, retry"}},
        {{"452 4.5.3"}, 452, "4.5.3", {""}},
        {{"250"}, 250, "", {""}},
        {{"250-", "250 "}, 250, "", {"", ""}},
        {{"550 4.1.1 class mismatch stays text"}, 550, "", {"4.1.1 class mismatch stays text"}},
        {{"250 2.1.0.5 not an enhanced code"}, 250, "", {"2.1.0.5 not an enhanced code"}},
        {{"250 2.1000.0 too many digits"}, 250, "", {"2.1000.0 too many digits"}},
        {{"250 2.1.0ok"}, 250, "", {"2.1.0ok"}},
        {{"250 2.999.999 max"}, 250, "2.999.999", {"max"}},
        {{"554 5.7.1 \xC3\xA9t\xC3\xA9"}, 554, "5.7.1", {"\xC3\xA9t\xC3\xA9"}},
        {{"250-first", "250 2.0.0 later"}, 250, "2.0.0", {"first", "later"}},
        {{"550-5.1.1 a", "550 5.7.1 b"}, 550, "5.1.1", {"a", "5.7.1 b"}},
    };
    for (const auto& c : cases) {
        ReplyParser p;
        for (std::size_t i = 0; i + 1 < c.lines.size(); ++i) {
            ASSERT_EQ(p.feed(c.lines[i]), ReplyParser::Status::need_more) << c.lines[i];
        }
        ASSERT_EQ(p.feed(c.lines.back()), ReplyParser::Status::done) << c.lines.back();
        Reply r = p.take();
        EXPECT_EQ(r.code, c.code) << c.lines[0];
        EXPECT_EQ(r.enhanced, c.enhanced) << c.lines[0];
        EXPECT_EQ(r.lines, c.text) << c.lines[0];
    }
}

TEST(ReplyParser, RejectsGarbage) {
    struct Case {
        std::vector<std::string> lines;
    };  // the last line gives error
    const Case cases[] = {
        {{""}},
        {{"25"}},
        {{"abc def"}},
        {{"2500 ok"}},
        {{"250_ok"}},
        {{"150 preliminary"}},
        {{"650 no"}},
        {{"260 second digit"}},
        {{"25a ok"}},
        {{" 250 ok"}},
        {{"HTTP/1.1 400 Bad Request"}},
        {{"250-a", "251 b"}},
        {{"250-a", "550 b"}},
        {{"250-a", "garbage"}},
        {{std::string("250 a\0b", 7)}},
        {{"250 a\rb"}},
        {{"250-a\n250 b"}},
    };
    for (const auto& c : cases) {
        ReplyParser p;
        for (std::size_t i = 0; i + 1 < c.lines.size(); ++i)
            ASSERT_EQ(p.feed(c.lines[i]), ReplyParser::Status::need_more);
        EXPECT_EQ(p.feed(c.lines.back()), ReplyParser::Status::error) << c.lines.back();
        // The parser is usable again after an error.
        EXPECT_EQ(p.feed("250 ok"), ReplyParser::Status::done);
        EXPECT_EQ(p.take().lines, std::vector<std::string>{"ok"});
    }
}

TEST(ReplyParser, LimitsLinesAndRestartsAfterDone) {
    ReplyParser p;
    for (std::size_t i = 0; i < ReplyParser::kMaxLines; ++i) ASSERT_EQ(p.feed("250-x"), ReplyParser::Status::need_more);
    EXPECT_EQ(p.feed("250 x"), ReplyParser::Status::error);

    ASSERT_EQ(p.feed("250 first"), ReplyParser::Status::done);
    ASSERT_EQ(p.feed("354 second"),
              ReplyParser::Status::done);  // previous reply not taken: dropped
    Reply r = p.take();
    EXPECT_EQ(r.code, 354);
    EXPECT_EQ(r.lines, std::vector<std::string>{"second"});
}

TEST(ReplyParser, RoundTripsWire) {
    const Reply replies[] = {make(250, "2.0.0", {"a", "b c", "d"}), make(421, "4.4.2", {"timeout"}),
                             make(250, "", {"mx", "SIZE 1"})};
    for (const auto& orig : replies) {
        ReplyParser p;
        std::string wire = orig.wire();
        ReplyParser::Status st = ReplyParser::Status::need_more;
        for (std::size_t pos = 0; pos < wire.size();) {
            const std::size_t end = wire.find("\r\n", pos);
            st = p.feed(std::string_view(wire).substr(pos, end - pos));
            pos = end + 2;
        }
        ASSERT_EQ(st, ReplyParser::Status::done);
        Reply back = p.take();
        EXPECT_EQ(back.code, orig.code);
        EXPECT_EQ(back.enhanced, orig.enhanced);
        EXPECT_EQ(back.lines, orig.lines);
    }
}

}  // namespace
