// Table-driven tests of MAIL and RCPT parameters (SIZE, BODY, SMTPUTF8, REQUIRETLS, RET, ENVID,
// AUTH, NOTIFY, ORCPT), their gating by ParseOptions, and RFC 3461 xtext.
#include <gtest/gtest.h>

#include <string>

#include "smtp/command.hpp"

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

TEST(MailParams, ParsesEveryParameter) {
    struct Case {
        std::string params;
        std::optional<std::uint64_t> size;
        Body body;
        bool smtputf8, requiretls;
        Ret ret;
        std::string envid, auth;
    };
    const auto U = Body::unspecified;
    const auto R = Ret::unspecified;
    const Case cases[] = {
        {"", std::nullopt, U, false, false, R, "", ""},
        {" SIZE=0", 0, U, false, false, R, "", ""},
        {" SIZE=10485760", 10485760, U, false, false, R, "", ""},
        {" size=18446744073709551615", UINT64_MAX, U, false, false, R, "", ""},
        {" BODY=7BIT", std::nullopt, Body::seven_bit, false, false, R, "", ""},
        {" BODY=8BITMIME", std::nullopt, Body::eight_bit_mime, false, false, R, "", ""},
        {" body=8bitmime", std::nullopt, Body::eight_bit_mime, false, false, R, "", ""},
        {" BODY=BINARYMIME", std::nullopt, Body::binary_mime, false, false, R, "", ""},
        {" SMTPUTF8", std::nullopt, U, true, false, R, "", ""},
        {" smtputf8", std::nullopt, U, true, false, R, "", ""},
        {" REQUIRETLS", std::nullopt, U, false, true, R, "", ""},
        {" RET=FULL", std::nullopt, U, false, false, Ret::full, "", ""},
        {" RET=hdrs", std::nullopt, U, false, false, Ret::hdrs, "", ""},
        {" ENVID=QQ314159", std::nullopt, U, false, false, R, "QQ314159", ""},
        {" ENVID=a+2Bb+3Dc+20d", std::nullopt, U, false, false, R, "a+b=c d", ""},
        {" AUTH=<>", std::nullopt, U, false, false, R, "", "<>"},
        {" AUTH=alice@example.com", std::nullopt, U, false, false, R, "", "alice@example.com"},
        {" AUTH=e+3Dmc2@example.com", std::nullopt, U, false, false, R, "", "e=mc2@example.com"},
        {"  SIZE=5   BODY=8BITMIME  ", 5, Body::eight_bit_mime, false, false, R, "", ""},
        {" SIZE=1000 BODY=8BITMIME SMTPUTF8 REQUIRETLS RET=HDRS ENVID=id1 AUTH=<>", 1000, Body::eight_bit_mime, true,
         true, Ret::hdrs, "id1", "<>"},
    };
    for (const auto& c : cases) {
        const std::string line = "MAIL FROM:<a@example.com>" + c.params;
        Command cmd = must_parse(line);
        EXPECT_EQ(cmd.verb, Verb::mail) << line;
        EXPECT_EQ(cmd.path.to_string(), "a@example.com") << line;
        EXPECT_EQ(cmd.mail.size, c.size) << line;
        EXPECT_EQ(cmd.mail.body, c.body) << line;
        EXPECT_EQ(cmd.mail.smtputf8, c.smtputf8) << line;
        EXPECT_EQ(cmd.mail.requiretls, c.requiretls) << line;
        EXPECT_EQ(cmd.mail.ret, c.ret) << line;
        EXPECT_EQ(cmd.mail.envid, c.envid) << line;
        EXPECT_EQ(cmd.mail.auth, c.auth) << line;
        EXPECT_EQ(cmd.rcpt.notify, 0u) << line;
    }
}

TEST(RcptParams, ParsesNotifyAndOrcpt) {
    struct Case {
        std::string params;
        unsigned notify;
        std::string orcpt;
    };
    const Case cases[] = {
        {"", 0, ""},
        {" NOTIFY=NEVER", 1, ""},
        {" NOTIFY=SUCCESS", 2, ""},
        {" NOTIFY=FAILURE", 4, ""},
        {" NOTIFY=DELAY", 8, ""},
        {" notify=success,failure", 6, ""},
        {" NOTIFY=DELAY,FAILURE,SUCCESS", 14, ""},
        {" ORCPT=rfc822;bob@example.org", 0, "rfc822;bob@example.org"},
        {" ORCPT=rfc822;b+2Bob@example.org", 0, "rfc822;b+ob@example.org"},
        {" ORCPT=utf-8;b\\x{E9}@example.org", 0, "utf-8;b\\x{E9}@example.org"},
        {" NOTIFY=FAILURE ORCPT=rfc822;bob@example.org", 4, "rfc822;bob@example.org"},
    };
    for (const auto& c : cases) {
        const std::string line = "RCPT TO:<bob@example.org>" + c.params;
        Command cmd = must_parse(line);
        EXPECT_EQ(cmd.verb, Verb::rcpt) << line;
        EXPECT_EQ(cmd.rcpt.notify, c.notify) << line;
        EXPECT_EQ(cmd.rcpt.orcpt, c.orcpt) << line;
        EXPECT_EQ(cmd.mail.size, std::nullopt) << line;
    }
}

struct Bad {
    std::string line;
    int code;
    std::string enhanced;
    std::string text_has;
};

TEST(Params, RejectsBadParameters) {
    const std::string long_envid = "ENVID=" + std::string(101, 'e');
    const std::string long_orcpt = "ORCPT=rfc822;" + std::string(494, 'o') /* value: 7 + 494 = 501 */;
    const Bad cases[] = {
        {"MAIL FROM:<a@b.c> SIZE", 501, "5.5.4", "SIZE requires a value"},
        {"MAIL FROM:<a@b.c> SIZE=", 501, "5.5.4", "empty or malformed value"},
        {"MAIL FROM:<a@b.c> SIZE=-1", 501, "5.5.4", "decimal number"},
        {"MAIL FROM:<a@b.c> SIZE=1k", 501, "5.5.4", "decimal number"},
        {"MAIL FROM:<a@b.c> SIZE=123456789012345678901", 501, "5.5.4", "decimal number"},
        {"MAIL FROM:<a@b.c> SIZE=99999999999999999999", 501, "5.5.4", "out of range"},
        {"MAIL FROM:<a@b.c> SIZE=1 SIZE=2", 501, "5.5.4", "Duplicate MAIL parameter SIZE"},
        {"MAIL FROM:<a@b.c> BODY=8BIT", 501, "5.5.4", "BODY must be"},
        {"MAIL FROM:<a@b.c> BODY", 501, "5.5.4", "BODY requires a value"},
        {"MAIL FROM:<a@b.c> BODY=7BIT body=8BITMIME", 501, "5.5.4", "Duplicate MAIL parameter BODY"},
        {"MAIL FROM:<a@b.c> SMTPUTF8=yes", 501, "5.5.4", "SMTPUTF8 takes no value"},
        {"MAIL FROM:<a@b.c> SMTPUTF8 SMTPUTF8", 501, "5.5.4", "Duplicate"},
        {"MAIL FROM:<a@b.c> REQUIRETLS=1", 501, "5.5.4", "REQUIRETLS takes no value"},
        {"MAIL FROM:<a@b.c> RET=ALL", 501, "5.5.4", "RET must be FULL or HDRS"},
        {"MAIL FROM:<a@b.c> RET=FULL RET=HDRS", 501, "5.5.4", "Duplicate"},
        {"MAIL FROM:<a@b.c> ENVID=a+2b", 501, "5.5.4", "not valid xtext"},
        {"MAIL FROM:<a@b.c> ENVID=a+0D+0A", 501, "5.5.4", "printable ASCII"},
        {"MAIL FROM:<a@b.c> " + long_envid, 501, "5.5.4", "longer than 100"},
        {"MAIL FROM:<a@b.c> ENVID=x ENVID=y", 501, "5.5.4", "Duplicate"},
        {"MAIL FROM:<a@b.c> AUTH=", 501, "5.5.4", "empty or malformed value"},
        {"MAIL FROM:<a@b.c> AUTH=+ZZ", 501, "5.5.4", "AUTH= must be <>"},
        {"MAIL FROM:<a@b.c> AUTH=a+0Ab", 501, "5.5.4", "control characters"},
        {"MAIL FROM:<a@b.c> X-FOO=bar", 555, "5.5.4", "MAIL parameter X-FOO is not supported"},
        {"MAIL FROM:<a@b.c> NOTIFY=NEVER", 555, "5.5.4", "MAIL parameter NOTIFY is not supported"},
        {"MAIL FROM:<a@b.c> =x", 501, "5.5.4", "Malformed parameter"},
        {"MAIL FROM:<a@b.c> -X", 501, "5.5.4", "Malformed parameter"},
        {"MAIL FROM:<a@b.c> SI_ZE=1", 501, "5.5.4", "Malformed parameter"},
        {"MAIL FROM:<a@b.c> ENVID=a=b", 501, "5.5.4", "malformed value"},
        {"RCPT TO:<a@b.c> NOTIFY", 501, "5.5.4", "NOTIFY requires a value"},
        {"RCPT TO:<a@b.c> NOTIFY=NEVER,SUCCESS", 501, "5.5.4", "NEVER cannot be combined"},
        {"RCPT TO:<a@b.c> NOTIFY=FAILURE,NEVER", 501, "5.5.4", "NEVER cannot be combined"},
        {"RCPT TO:<a@b.c> NOTIFY=SUCCESS,SUCCESS", 501, "5.5.4", "twice"},
        {"RCPT TO:<a@b.c> NOTIFY=SUCCESS,", 501, "5.5.4", "NOTIFY must be"},
        {"RCPT TO:<a@b.c> NOTIFY=ALWAYS", 501, "5.5.4", "NOTIFY must be"},
        {"RCPT TO:<a@b.c> NOTIFY=DELAY NOTIFY=DELAY", 501, "5.5.4", "Duplicate RCPT parameter NOTIFY"},
        {"RCPT TO:<a@b.c> ORCPT=bob@example.org", 501, "5.5.4", "addr-type;xtext"},
        {"RCPT TO:<a@b.c> ORCPT=rfc822;", 501, "5.5.4", "empty or not valid xtext"},
        {"RCPT TO:<a@b.c> ORCPT=;bob@example.org", 501, "5.5.4", "addr-type;xtext"},
        {"RCPT TO:<a@b.c> ORCPT=rfc822;bob+0D+0A@x", 501, "5.5.4", "control characters"},
        {"RCPT TO:<a@b.c> " + long_orcpt, 501, "5.5.4", "longer than 500"},
        {"RCPT TO:<a@b.c> ORCPT=rfc822;a ORCPT=rfc822;b", 501, "5.5.4", "Duplicate"},
        {"RCPT TO:<a@b.c> SIZE=10", 555, "5.5.4", "RCPT parameter SIZE is not supported"},
        {"RCPT TO:<a@b.c> SMTPUTF8", 555, "5.5.4", "RCPT parameter SMTPUTF8 is not supported"},
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

TEST(Params, OnlyAnnouncedExtensionsAreAccepted) {
    struct Case {
        std::string line;
        bool ParseOptions::*flag;
    };
    const Case cases[] = {
        {"MAIL FROM:<a@b.c> BODY=8BITMIME", &ParseOptions::eight_bit_mime},
        {"MAIL FROM:<a@b.c> SMTPUTF8", &ParseOptions::smtputf8},
        {"MAIL FROM:<a@b.c> REQUIRETLS", &ParseOptions::requiretls},
        {"MAIL FROM:<a@b.c> RET=FULL", &ParseOptions::dsn},
        {"MAIL FROM:<a@b.c> ENVID=x", &ParseOptions::dsn},
        {"MAIL FROM:<a@b.c> AUTH=<>", &ParseOptions::auth},
        {"RCPT TO:<a@b.c> NOTIFY=NEVER", &ParseOptions::dsn},
        {"RCPT TO:<a@b.c> ORCPT=rfc822;a@b.c", &ParseOptions::dsn},
    };
    for (const auto& c : cases) {
        ParseOptions on;
        EXPECT_TRUE(std::holds_alternative<Command>(parse_command(c.line, on))) << c.line;
        ParseOptions off;
        off.*c.flag = false;
        auto res = parse_command(c.line, off);
        ASSERT_TRUE(std::holds_alternative<Reply>(res)) << c.line;
        EXPECT_EQ(std::get<Reply>(res).code, 555) << c.line;
        EXPECT_EQ(std::get<Reply>(res).enhanced, "5.5.4") << c.line;
    }
}

TEST(Params, SizeLimit) {
    struct Case {
        std::uint64_t max;
        std::string size;
        int code;
    };
    const Case cases[] = {
        {1000, "1000", 0},
        {1000, "1001", 552},
        {1000, "0", 0},
        {0, "18446744073709551615", 0},
        {1000, "99999999999999999999", 552},
    };
    for (const auto& c : cases) {
        ParseOptions o;
        o.max_size = c.max;
        const std::string line = "MAIL FROM:<a@b.c> SIZE=" + c.size;
        auto res = parse_command(line, o);
        if (c.code == 0) {
            ASSERT_TRUE(std::holds_alternative<Command>(res)) << line;
            EXPECT_EQ(std::to_string(*std::get<Command>(res).mail.size), c.size);
        } else {
            ASSERT_TRUE(std::holds_alternative<Reply>(res)) << line;
            const auto& r = std::get<Reply>(res);
            EXPECT_EQ(r.code, c.code) << line;
            EXPECT_EQ(r.enhanced, "5.3.4") << line;
            EXPECT_NE(r.lines.at(0).find("limit of 1000 octets"), std::string::npos) << r.summary();
        }
    }
}

TEST(Xtext, DecodesAndEncodes) {
    struct Case {
        std::string xtext;
        std::string plain;
    };
    const Case cases[] = {
        {"", ""},           {"abc", "abc"},         {"+2B", "+"},
        {"+3D", "="},       {"a+20b", "a b"},       {"+00", std::string(1, '\0')},
        {"+FF", "\xFF"},    {"+C3+A9", "\xC3\xA9"}, {"!~\"<>", "!~\"<>"},
        {"+0D+0A", "\r\n"},
    };
    for (const auto& c : cases) {
        auto d = xtext_decode(c.xtext);
        ASSERT_TRUE(d.has_value()) << c.xtext;
        EXPECT_EQ(*d, c.plain) << c.xtext;
        EXPECT_EQ(xtext_encode(c.plain), c.xtext) << c.xtext;
    }
    EXPECT_EQ(xtext_decode("+41"), "A");  // needless encoding is still valid
    const char* bad[] = {"+", "+2", "+2b", "+g0", "a b", "a=b", "\x7F", "\xC3\xA9", "a+", "+ 20"};
    for (const char* b : bad) EXPECT_FALSE(xtext_decode(b).has_value()) << b;
}

}  // namespace
