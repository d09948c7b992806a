// Issue 11's delivery fixes at the unit level: a host of a DNSSEC-secure MX set whose A or AAAA
// lookup fails is flagged (RFC 7672 2.1.1) and classified unusable, never used with half its
// addresses; the loop check (loopback, our own listeners) and its 5.4.6 bounce; the bounce of a
// REQUIRETLS message carries REQUIRETLS (RFC 8689 4.4) and only CRLF line ends.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "delivery/classify.hpp"
#include "delivery/dsn.hpp"
#include "delivery/route.hpp"
#include "smtp/data_encode.hpp"
#include "support/fake_resolver.hpp"

using namespace mailward;
using namespace mailward::delivery;

using namespace std::string_literals;

namespace {

dns::AddressAnswer addrs(std::vector<std::string> list, dns::Security sec) {
    dns::AddressAnswer a;
    a.addresses = std::move(list);
    a.security = sec;
    a.nodata = a.addresses.empty();
    return a;
}

Result<Route> resolve(dns::FakeResolver& r) {
    boost::asio::io_context io;
    std::mt19937 rng(1);
    std::string detail;
    auto fut = boost::asio::co_spawn(io, resolve_route(r, "ex.test", rng, detail), boost::asio::use_future);
    io.run();
    return fut.get();
}

}  // namespace

TEST(SecureMxAddressLookup, AFailedLookupIsFlagged) {
    const auto secure = dns::Security::secure;
    using AR = Result<dns::AddressAnswer>;
    struct Case {
        const char* name;
        AR a, aaaa;
        bool failed, addresses_secure;
        std::size_t addresses;
    };
    const Case cases[] = {
        {"both secure", addrs({"127.0.0.10"}, secure), addrs({"::1"}, secure), false, true, 2},
        {"AAAA secure nodata", addrs({"127.0.0.10"}, secure), addrs({}, secure), false, true, 1},
        {"AAAA bogus", addrs({"127.0.0.10"}, secure), AR(dns::DnsErrc::bogus), true, false, 1},
        {"AAAA SERVFAIL", addrs({"127.0.0.10"}, secure), AR(dns::DnsErrc::servfail), true, false, 1},
        {"A bogus, AAAA secure", AR(dns::DnsErrc::bogus), addrs({"::1"}, secure), true, false, 1},
        {"A timeout", AR(dns::DnsErrc::timeout), addrs({"::1"}, secure), true, false, 1},
        {"AAAA nxdomain (not a failure)", addrs({"127.0.0.10"}, secure), AR(dns::DnsErrc::nxdomain), false, false, 1},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        dns::FakeResolver r;
        dns::MxAnswer mx;
        mx.records = {{10, "mx.ex.test"}};
        mx.security = secure;
        r.mx_answers["ex.test"] = mx;
        r.a_answers["mx.ex.test"] = c.a;
        r.aaaa_answers["mx.ex.test"] = c.aaaa;
        auto route = resolve(r);
        ASSERT_TRUE(route.has_value());
        ASSERT_EQ(route->hops.size(), 1u);
        const Hop& h = route->hops[0];
        EXPECT_EQ(h.address_lookup_failed, c.failed);
        EXPECT_EQ(h.addresses_secure, c.addresses_secure);
        EXPECT_EQ(h.addresses.size(), c.addresses);
        if (c.failed) {
            EXPECT_FALSE(h.error.empty());
        }
    }
}

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

    // A reply synthesized here (nothing sent) names no remote party.
    Evidence local;
    SessionError s;
    s.stage = Stage::mail;
    s.reply = smtp::Reply(554, "5.6.0", "message contains a NUL octet");
    s.local = true;
    s.detail = "the message holds a NUL octet";
    local.session = s;
    local.host = "mx.ex.test";
    c = classify(local);
    EXPECT_EQ(c.outcome, Outcome::permanent);
    EXPECT_EQ(c.status, "5.6.0");
    EXPECT_EQ(c.reason, "not sent to mx.ex.test: the message holds a NUL octet");
    EXPECT_TRUE(c.diagnostic.empty());
}

TEST(LoopKind, Table) {
    OwnAddresses own;
    own.listeners = {{"127.0.0.1", 2525}, {"0.0.0.0", 465}, {"::", 587}, {"192.0.2.7", 25}};
    own.interfaces = {{192, 0, 2, 7}, {198, 51, 100, 9}, {127, 0, 0, 1}};
    struct Case {
        const char* address;
        unsigned short port;
        LoopKind want;
    };
    const Case cases[] = {
        {"127.0.0.1", 25, LoopKind::loopback},
        {"127.1.2.3", 25, LoopKind::loopback},
        {"::1", 25, LoopKind::loopback},
        {"::ffff:127.0.0.9", 25, LoopKind::loopback},
        {"0.0.0.0", 25, LoopKind::loopback},
        {"::", 25, LoopKind::loopback},
        {"127.0.0.1", 2525, LoopKind::own_listener},       // the submission listener itself
        {"::ffff:127.0.0.1", 2525, LoopKind::own_listener},
        {"127.0.0.2", 2525, LoopKind::loopback},           // loopback, not our listener
        {"198.51.100.9", 465, LoopKind::own_listener},     // our address, wildcard listener
        {"198.51.100.9", 587, LoopKind::own_listener},     // v4 address, "::" listener
        {"198.51.100.9", 25, LoopKind::none},              // our address, nothing of ours on 25
        {"192.0.2.7", 25, LoopKind::own_listener},
        {"203.0.113.5", 465, LoopKind::none},
        {"2001:db8::1", 25, LoopKind::none},
        {"not-an-ip", 25, LoopKind::none},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(loop_kind(c.address, c.port, own), c.want) << c.address << ":" << c.port;
    }
}

TEST(LoopKind, OwnAddressesFromConfig) {
    config::Config cfg;
    cfg.submission.listen = {{"127.0.0.1", 2525}};
    cfg.submission.tls_listen = {{"::1", 4650}};
    cfg.escrow.listen = "127.0.0.1:8443";
    auto own = own_addresses(cfg);
    EXPECT_EQ(loop_kind("127.0.0.1", 2525, own), LoopKind::own_listener);
    EXPECT_EQ(loop_kind("::1", 4650, own), LoopKind::own_listener);
    EXPECT_EQ(loop_kind("127.0.0.1", 8443, own), LoopKind::own_listener);
    EXPECT_EQ(loop_kind("127.0.0.1", 25, own), LoopKind::loopback);
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
    for (bool requiretls : {false, true}) {
        env.requiretls = requiretls;
        auto b = make_bounce(env, body, {{0, "5.1.1", "", "mx.example.net", "no such user"}}, "relay.example.test", now);
        ASSERT_TRUE(b.has_value());
        EXPECT_EQ(b->envelope.requiretls, requiretls);
        EXPECT_NE(b->body.find("secret line"), std::string::npos);  // the whole original (RET not HDRS)
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
    auto b = make_bounce(env, body, {{0, "5.1.1", "smtp; 550\r\n.\r\nx", "mx", "reason\n.\nMAIL FROM:<x@y>"}},
                         "relay.example.test", now);
    ASSERT_TRUE(b.has_value());
    const auto scan = smtp::scan_body(b->body);
    EXPECT_TRUE(scan.crlf_only);
    EXPECT_FALSE(scan.nul);
    EXPECT_EQ(b->envelope.size, b->body.size());
}
