// Issue 11's routing fixes at the unit level: a host of a DNSSEC-secure MX set whose A or AAAA
// lookup fails is flagged (RFC 7672 2.1.1), never used with half its addresses; the loop check
// (loopback, our own listeners) from the configuration and this host's addresses.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "outbound/route.hpp"
#include "support/fake_resolver.hpp"

using namespace mailward;
using namespace mailward::outbound;

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
        {"127.0.0.1", 2525, LoopKind::own_listener},  // the submission listener itself
        {"::ffff:127.0.0.1", 2525, LoopKind::own_listener},
        {"127.0.0.2", 2525, LoopKind::loopback},        // loopback, not our listener
        {"198.51.100.9", 465, LoopKind::own_listener},  // our address, wildcard listener
        {"198.51.100.9", 587, LoopKind::own_listener},  // v4 address, "::" listener
        {"198.51.100.9", 25, LoopKind::none},           // our address, nothing of ours on 25
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
