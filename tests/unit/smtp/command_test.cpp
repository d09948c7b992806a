// Table-driven tests of SMTP command parsing (smtp/command.hpp): every verb, paths on MAIL and
// RCPT, and a long table of malformed lines with the exact reply each must get.
#include "smtp/command.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace mailward::smtp;

namespace {

Command must_parse(std::string_view line, const ParseOptions& opts = {}) {
    auto r = parse_command(line, opts);
    if (auto* reply = std::get_if<Reply>(&r)) {
        ADD_FAILURE() << "'" << line << "' -> " << reply->summary();
        return {};
    }
    return std::get<Command>(r);
}

TEST(Command, ParsesEveryVerb) {
    struct Case {
        std::string line;
        Verb verb;
        std::string argument;
    };
    const Case cases[] = {
        {"HELO client.example", Verb::helo, "client.example"},
        {"helo client.example", Verb::helo, "client.example"},
        {"EHLO client.example", Verb::ehlo, "client.example"},
        {"eHlO [192.0.2.7]", Verb::ehlo, "[192.0.2.7]"},
        {"EHLO  client.example  ", Verb::ehlo, "client.example"},
        {"DATA", Verb::data, ""},
        {"data", Verb::data, ""},
        {"RSET", Verb::rset, ""},
        {"RSET ", Verb::rset, ""},
        {"NOOP", Verb::noop, ""},
        {"NOOP keep me", Verb::noop, "keep me"},
        {"QUIT", Verb::quit, ""},
        {"VRFY postmaster", Verb::vrfy, "postmaster"},
        {"EXPN staff", Verb::expn, "staff"},
        {"HELP", Verb::help, ""},
        {"HELP MAIL", Verb::help, "MAIL"},
        {"STARTTLS", Verb::starttls, ""},
        {"starttls", Verb::starttls, ""},
        {"AUTH PLAIN", Verb::auth, "PLAIN"},
        {"AUTH PLAIN AHVzZXIAcGFzcw==", Verb::auth, "PLAIN AHVzZXIAcGFzcw=="},
        {"AUTH plain =", Verb::auth, "plain ="},
        {"AUTH LOGIN", Verb::auth, "LOGIN"},
        {"AUTH SCRAM-SHA-256", Verb::auth, "SCRAM-SHA-256"},
        {"BDAT 1000", Verb::bdat, "1000"},
        {"BDAT 0 LAST", Verb::bdat, "0 LAST"},
        {"bdat 42 last", Verb::bdat, "42 last"},
    };
    for (const auto& c : cases) {
        Command cmd = must_parse(c.line);
        EXPECT_EQ(cmd.verb, c.verb) << c.line;
        EXPECT_EQ(cmd.argument, c.argument) << c.line;
    }
}

TEST(Command, ParsesMailAndRcptPaths) {
    struct Case {
        std::string line;
        Verb verb;
        std::string address;
    };
    const Case cases[] = {
        {"MAIL FROM:<alice@example.com>", Verb::mail, "alice@example.com"},
        {"mail from:<alice@example.com>", Verb::mail, "alice@example.com"},
        {"MAIL FROM: <alice@example.com>", Verb::mail, "alice@example.com"},
        {"MAIL FROM:<>", Verb::mail, ""},
        {"MAIL FROM: <>", Verb::mail, ""},
        {"MAIL FROM:<> SIZE=10", Verb::mail, ""},
        {"MAIL FROM:<\"a b\"@example.com>", Verb::mail, "\"a b\"@example.com"},
        {"MAIL FROM:<@hop.example:alice@example.com>", Verb::mail, "alice@example.com"},
        {"RCPT TO:<bob@example.org>", Verb::rcpt, "bob@example.org"},
        {"Rcpt To:<bob@example.org>", Verb::rcpt, "bob@example.org"},
        {"RCPT TO: <bob@example.org>", Verb::rcpt, "bob@example.org"},
        {"RCPT TO:<bob@example.org>   ", Verb::rcpt, "bob@example.org"},
        {"RCPT TO:<@a.example,@b.example:bob@example.org>", Verb::rcpt, "bob@example.org"},
        {"RCPT TO:<bob@[IPv6:2001:db8::25]>", Verb::rcpt, "bob@[IPv6:2001:db8::25]"},
    };
    for (const auto& c : cases) {
        Command cmd = must_parse(c.line);
        EXPECT_EQ(cmd.verb, c.verb) << c.line;
        EXPECT_EQ(cmd.path.to_string(), c.address) << c.line;
        EXPECT_EQ(cmd.argument, "") << c.line;
    }
}

TEST(Command, Utf8AddressesNeedSmtputf8) {
    ParseOptions opts;
    Command m = must_parse("MAIL FROM:<j\xC3\xBCrgen@b\xC3\xBC.de> SMTPUTF8", opts);
    EXPECT_EQ(m.path.local, "j\xC3\xBCrgen");
    EXPECT_EQ(m.path.domain, "b\xC3\xBC.de");
    EXPECT_TRUE(m.mail.smtputf8);

    opts.transaction_smtputf8 = true;
    Command r = must_parse("RCPT TO:<\xE7\x94\xA8\xE6\x88\xB7@\xE4\xBE\x8B\xE5\xAD\x90.cn>", opts);
    EXPECT_EQ(r.path.local, "\xE7\x94\xA8\xE6\x88\xB7");

    struct Case {
        std::string line;
        bool announced, transaction;
        int code;
        std::string enhanced;
    };
    const Case cases[] = {
        {"MAIL FROM:<j\xC3\xBCrgen@example.com>", true, false, 553, "5.6.7"},
        {"MAIL FROM:<j\xC3\xBCrgen@example.com> SMTPUTF8", false, false, 553, "5.6.7"},
        {"MAIL FROM:<j\xFCrgen@example.com>", true, false, 553, "5.6.7"},
        {"MAIL FROM:<j\xFCrgen@example.com> SMTPUTF8", true, false, 501, "5.1.7"},
        {"RCPT TO:<j\xC3\xBCrgen@example.com>", true, false, 553, "5.6.7"},
        {"RCPT TO:<j\xFCrgen@example.com>", true, true, 501, "5.1.3"},
        {"RCPT TO:<j\xFCrgen@example.com>", true, false, 553, "5.6.7"},
        {"MAIL FROM:<a@b.c> ENVID=\xC3\xA9", true, false, 553, "5.6.7"},
        {"EHLO b\xC3\xBC.de", true, true, 553, "5.6.7"},
        {"VRFY j\xC3\xBCrgen", true, true, 553, "5.6.7"},
    };
    for (const auto& c : cases) {
        ParseOptions o;
        o.smtputf8 = c.announced;
        o.transaction_smtputf8 = c.transaction;
        auto res = parse_command(c.line, o);
        ASSERT_TRUE(std::holds_alternative<Reply>(res)) << c.line;
        const auto& reply = std::get<Reply>(res);
        EXPECT_EQ(reply.code, c.code) << c.line << " -> " << reply.summary();
        EXPECT_EQ(reply.enhanced, c.enhanced) << c.line << " -> " << reply.summary();
    }
}

struct Bad {
    std::string line;
    int code;
    std::string enhanced;
    std::string text_has;  // a piece of the reply text that says what is wrong
};

TEST(Command, RejectsMalformedLines) {
    const std::string l65(65, 'x');
    const Bad cases[] = {
        {"", 500, "5.5.2", "Empty"},
        {"   ", 500, "5.5.2", "Empty"},
        {" HELO x", 500, "5.5.2", "start with a space"},
        {"FOO", 500, "5.5.2", "not recognized: FOO"},
        {"mailfrom:<a@b>", 500, "5.5.2", "Command not recognized"},
        {"HELLO x", 500, "5.5.2", "not recognized: HELLO"},
        {"MAIL\tFROM:<a@b>", 500, "5.5.2", "TAB"},
        {std::string("NOOP\0x", 6), 500, "5.5.2", "NUL"},
        {"DATA\r", 500, "5.5.2", "CR"},
        {"RSET\nQUIT", 500, "5.5.2", "LF"},
        {"NOOP \x7F", 500, "5.5.2", "0x7F"},
        {"NOOP \x1B[31m", 500, "5.5.2", "0x1B"},
        {"\xC3\xA9HLO x", 500, "5.5.2", "not recognized"},
        {"XVERYLONGCOMMANDNAME", 500, "5.5.2", "not recognized"},
        {"HELO", 501, "5.5.4", "HELO requires a domain"},
        {"EHLO", 501, "5.5.4", "EHLO requires a domain"},
        {"EHLO    ", 501, "5.5.4", "EHLO requires a domain"},
        {"DATA now", 501, "5.5.4", "DATA takes no arguments"},
        {"RSET x", 501, "5.5.4", "RSET takes no arguments"},
        {"QUIT bye", 501, "5.5.4", "QUIT takes no arguments"},
        {"STARTTLS x", 501, "5.5.4", "STARTTLS takes no arguments"},
        {"VRFY", 501, "5.5.4", "VRFY requires an argument"},
        {"EXPN", 501, "5.5.4", "EXPN requires an argument"},
        {"AUTH", 501, "5.5.4", "mechanism"},
        {"AUTH PL@IN", 501, "5.5.4", "malformed"},
        {"AUTH ABCDEFGHIJKLMNOPQRSTU", 501, "5.5.4", "longer than 20"},
        {"AUTH PLAIN abc def", 501, "5.5.4", "at most one initial response"},
        {"AUTH PLAIN a*b", 501, "5.5.4", "not base64"},
        {"BDAT", 501, "5.5.4", "BDAT <chunk-size>"},
        {"BDAT x", 501, "5.5.4", "BDAT <chunk-size>"},
        {"BDAT 10 FIRST", 501, "5.5.4", "BDAT <chunk-size>"},
        {"BDAT 99999999999999999999999", 501, "5.5.4", "BDAT <chunk-size>"},
        {"MAIL", 501, "5.5.4", "Syntax: MAIL FROM:<address>"},
        {"MAIL <a@b>", 501, "5.5.4", "Syntax: MAIL FROM:<address>"},
        {"MAIL FROM", 501, "5.5.4", "Syntax: MAIL FROM:<address>"},
        {"MAIL FROM:", 501, "5.5.4", "Syntax: MAIL FROM:<address>"},
        {"MAIL FROM:  <a@b>", 501, "5.5.4", "Syntax: MAIL FROM:<address>"},
        {"MAIL TO:<a@b>", 501, "5.5.4", "Syntax: MAIL FROM:<address>"},
        {"MAIL FROM :<a@b>", 501, "5.5.4", "Syntax: MAIL FROM:<address>"},
        {"RCPT", 501, "5.5.4", "Syntax: RCPT TO:<address>"},
        {"RCPT FROM:<a@b>", 501, "5.5.4", "Syntax: RCPT TO:<address>"},
        {"RCPT TO:", 501, "5.5.4", "Syntax: RCPT TO:<address>"},
        {"MAIL FROM:a@b.c", 501, "5.1.7", "enclosed in <...>"},
        {"MAIL FROM:<a@b.c", 501, "5.1.7", "enclosed in <...>"},
        {"MAIL FROM:<a b@c.d>", 501, "5.1.7", "local part"},
        {"MAIL FROM:<a@-c.d>", 501, "5.1.7", "domain"},
        {"MAIL FROM:<a@c.d.>", 501, "5.1.7", "domain"},
        {"MAIL FROM:<" + l65 + "@c.d>", 501, "5.1.7", "longer than 64"},
        {"MAIL FROM:<a@c.d>x", 501, "5.5.4", "after the address"},
        {"MAIL FROM:<a@c.d>SIZE=1", 501, "5.5.4", "after the address"},
        {"RCPT TO:<>", 501, "5.1.3", "null address"},
        {"RCPT TO:bob@example.org", 501, "5.1.3", "enclosed in <...>"},
        {"RCPT TO:<bob>", 501, "5.1.3", "domain"},
        {"RCPT TO:<bob@[300.1.1.1]>", 501, "5.1.3", "domain"},
        {"RCPT TO:<\"bob@example.org>", 501, "5.1.3", "local part"},
        {"RCPT TO:<" + l65 + "@c.d>", 501, "5.1.3", "longer than 64"},
    };
    for (const auto& c : cases) {
        auto res = parse_command(c.line, ParseOptions{});
        ASSERT_TRUE(std::holds_alternative<Reply>(res)) << c.line;
        const auto& reply = std::get<Reply>(res);
        EXPECT_EQ(reply.code, c.code) << c.line << " -> " << reply.summary();
        EXPECT_EQ(reply.enhanced, c.enhanced) << c.line << " -> " << reply.summary();
        ASSERT_EQ(reply.lines.size(), 1u);
        EXPECT_NE(reply.lines[0].find(c.text_has), std::string::npos) << c.line << " -> " << reply.summary();
    }
}

TEST(Command, NeverCrashesOnOddBytes) {
    // Every single octet, and every octet after each verb: must come back with a value, never
    // throw.
    for (int b = 0; b < 256; ++b) {
        const std::string one(1, static_cast<char>(b));
        const char* verbs[] = {"MAIL FROM:<", "RCPT TO:<a@", "EHLO ", "AUTH PLAIN ", "BDAT ", ""};
        for (const char* v : verbs) {
            auto r = parse_command(std::string(v) + one, ParseOptions{});
            if (auto* reply = std::get_if<Reply>(&r)) {
                EXPECT_GE(reply->code, 500);
                EXPECT_FALSE(reply->lines.empty());
            }
        }
    }
}

}  // namespace
