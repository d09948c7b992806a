// Issue 11's delivery fixes at the unit level: a host refused before any connection (a failed
// address lookup in a signed MX set, a loop) is classified (4.4.3, 5.4.6), a reply synthesized here
// names no remote party; the bounce of a REQUIRETLS message carries REQUIRETLS (RFC 8689 4.4) and
// only CRLF line ends.
#include <gtest/gtest.h>

#include "delivery/classify.hpp"
#include "delivery/dsn.hpp"
#include "smtp/data_encode.hpp"

using namespace mailward;
using namespace mailward::delivery;
using outbound::SessionError;
using outbound::Stage;

using namespace std::string_literals;

TEST(Classify, HopRefusals) {
    Evidence lookup;
    lookup.refusal = HopRefusal::address_lookup_failed;
    lookup.host = "mx.ex.test";
    lookup.route_detail = "AAAA: DNSSEC validation failed";
    auto c = classify(lookup);
    EXPECT_EQ(c.outcome, Outcome::temporary);
    EXPECT_EQ(c.status, "4.4.3");
    EXPECT_TRUE(c.try_next_host);
    EXPECT_NE(c.reason.find("AAAA: DNSSEC validation failed"), std::string::npos) << c.reason;

    Evidence loop;
    loop.refusal = HopRefusal::loops_back;
    loop.host = "mx.ex.test";
    loop.route_detail = "127.0.0.1 is a loopback address";
    c = classify(loop);
    EXPECT_EQ(c.outcome, Outcome::permanent);
    EXPECT_EQ(c.status, "5.4.6");
    EXPECT_TRUE(c.try_next_host);
    EXPECT_NE(c.reason.find("loops back to myself"), std::string::npos) << c.reason;

    // Refused here (nothing sent): no remote party named, a status per refusal, always a bounce.
    struct Case {
        outbound::Refusal refusal;
        const char* detail;
        const char* status;
        const char* reason;
    };
    const Case cases[] = {
        {outbound::Refusal::nul_octet, "the message holds a NUL octet", "5.6.0",
         "not sent to mx.ex.test (5.6.0): the message holds a NUL octet"},
        {outbound::Refusal::size_exceeded, "the message is 200 octets, mx.ex.test accepts at most 100", "5.3.4",
         "not sent to mx.ex.test (5.3.4): the message is 200 octets, mx.ex.test accepts at most 100"},
        {outbound::Refusal::no_8bitmime, "", "5.6.3",
         "not sent to mx.ex.test (5.6.3): the next hop does not support 8BITMIME"},
        {outbound::Refusal::no_smtputf8, "", "5.6.7",
         "not sent to mx.ex.test (5.6.7): the next hop does not support SMTPUTF8"},
        {outbound::Refusal::no_requiretls, "RFC 8689: no REQUIRETLS at mx.ex.test", "5.7.30",
         "not sent to mx.ex.test (5.7.30): RFC 8689: no REQUIRETLS at mx.ex.test"},
    };
    for (const auto& rc : cases) {
        SCOPED_TRACE(rc.status);
        Evidence local;
        SessionError s;
        s.stage = Stage::mail;
        s.refusal = rc.refusal;
        s.detail = rc.detail;
        local.session = s;
        local.host = "mx.ex.test";
        local.required = tls::Level::verify;
        c = classify(local);
        EXPECT_EQ(c.outcome, Outcome::permanent);
        EXPECT_EQ(c.status, rc.status);
        EXPECT_EQ(c.reason, rc.reason);
        EXPECT_TRUE(c.diagnostic.empty());
        EXPECT_FALSE(c.try_next_host);
    }
}

TEST(Dsn, BounceOfRequireTlsCarriesRequireTls) {
    store::Envelope env;
    env.id = "01m8aaaaaaaaaaaaaa";
    env.sender = "alice@example.org";
    store::Recipient r;
    r.address = "bob@example.net";
    env.recipients.push_back(r);
    const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
    const std::string body = "Subject: secret\r\n\r\nsecret line\r\n";
    env.sender_mode = "opportunistic";
    for (bool requiretls : {false, true}) {
        env.requiretls = requiretls;
        auto b = make_dsn(env, body, {{0, "5.1.1", "", "mx.example.net", "no such user"}},
                          {"relay.example.test", now, std::nullopt});
        ASSERT_TRUE(b.has_value());
        EXPECT_EQ(b->envelope.requiretls, requiretls);
        // RET not HDRS: the whole original, unless REQUIRETLS protected it (then its headers only).
        EXPECT_EQ(b->body.find("secret line") != std::string::npos, !requiretls);
        EXPECT_NE(b->body.find("Subject: secret"), std::string::npos);
    }
}

TEST(Dsn, BounceHasOnlyCrlfLineEnds) {
    store::Envelope env;
    env.id = "01m8aaaaaaaaaaaaaa";
    env.sender = "alice@example.org";
    store::Recipient r;
    r.address = "bob@example.net";
    env.recipients.push_back(r);
    const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
    // An original that never came through the server (which refuses these): bare LF, CR, a NUL.
    const std::string body = "Subject: x\r\n\r\na\n.\nb\r.\rc\0d\r\n"s;
    env.sender_mode = "opportunistic";  // the whole original is attached
    auto b = make_dsn(env, body, {{0, "5.1.1", "smtp; 550\r\n.\r\nx", "mx", "reason\n.\nMAIL FROM:<x@y>"}},
                      {"relay.example.test", now, std::nullopt});
    ASSERT_TRUE(b.has_value());
    const auto scan = smtp::scan_body(b->body);
    EXPECT_TRUE(scan.crlf_only);
    EXPECT_FALSE(scan.nul);
    EXPECT_EQ(b->envelope.size, b->body.size());
}
