// MX routing with the fake resolver: preference order with equal preferences shuffled, implicit
// MX, null MX (RFC 7505), NXDOMAIN, temporary DNS failures, hosts without addresses, literals.
#include "outbound/route.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <set>

#include "support/fake_resolver.hpp"

using namespace mailward;
using namespace mailward::outbound;

namespace {

dns::MxAnswer mx(std::vector<dns::MxRecord> records, dns::Security sec = dns::Security::insecure) {
    dns::MxAnswer a;
    a.records = std::move(records);
    a.security = sec;
    a.nodata = a.records.empty();
    return a;
}

dns::AddressAnswer addrs(std::vector<std::string> list, dns::Security sec = dns::Security::insecure) {
    dns::AddressAnswer a;
    a.addresses = std::move(list);
    a.security = sec;
    a.nodata = a.addresses.empty();
    return a;
}

struct Resolved {
    Result<Route> route = common::Errc::invalid_argument;
    std::string detail;
};

Resolved resolve(dns::FakeResolver& r, const std::string& domain, unsigned seed = 1) {
    boost::asio::io_context io;
    std::mt19937 rng(seed);
    Resolved out;
    auto fut = boost::asio::co_spawn(io, resolve_route(r, domain, rng, out.detail), boost::asio::use_future);
    io.run();
    out.route = fut.get();
    return out;
}

}  // namespace

TEST(OrderMx, SortsByPreferenceAndShufflesTies) {
    std::set<std::string> first_seen;
    for (unsigned seed = 0; seed < 64; ++seed) {
        std::mt19937 rng(seed);
        auto out = order_mx({{20, "c"}, {10, "a1"}, {30, "d"}, {10, "a2"}, {10, "a3"}}, rng);
        ASSERT_EQ(out.size(), 5u);
        for (std::size_t i = 1; i < out.size(); ++i) EXPECT_LE(out[i - 1].preference, out[i].preference);
        EXPECT_EQ(out[3].exchange, "c");
        EXPECT_EQ(out[4].exchange, "d");
        first_seen.insert(out[0].exchange);
    }
    EXPECT_EQ(first_seen, (std::set<std::string>{"a1", "a2", "a3"}));  // every tie comes first sometimes
}

TEST(Route, Table) {
    struct Case {
        const char* name;
        std::function<void(dns::FakeResolver&)> setup;
        error_code want_error;
        std::vector<std::string> want_hosts;
        std::vector<std::string> want_first_addresses;
        bool want_implicit = false;
        bool want_mx_secure = false;
    };
    const Case cases[] = {
        {"mx by preference",
         [](dns::FakeResolver& r) {
             r.mx_answers["ex.test"] = mx({{20, "mx2.ex.test"}, {10, "mx1.ex.test"}}, dns::Security::secure);
             r.a_answers["mx1.ex.test"] = addrs({"127.0.0.10"});
             r.a_answers["mx2.ex.test"] = addrs({"127.0.0.11"});
             r.aaaa_answers["mx1.ex.test"] = addrs({"::1"});
             r.aaaa_answers["mx2.ex.test"] = addrs({});
         },
         {},
         {"mx1.ex.test", "mx2.ex.test"},
         {"127.0.0.10", "::1"},
         false,
         true},
        {"implicit mx",
         [](dns::FakeResolver& r) {
             r.mx_answers["ex.test"] = mx({});
             r.a_answers["ex.test"] = addrs({"127.0.0.20"});
             r.aaaa_answers["ex.test"] = addrs({});
         },
         {},
         {"ex.test"},
         {"127.0.0.20"},
         true,
         false},
        {"null mx",
         [](dns::FakeResolver& r) {
             r.mx_answers["ex.test"] = mx({{0, ""}});
         },
         RouteErrc::null_mx,
         {},
         {}},
        {"null mx among others is ignored",
         [](dns::FakeResolver& r) {
             r.mx_answers["ex.test"] = mx({{0, ""}, {10, "mx.ex.test"}});
             r.a_answers["mx.ex.test"] = addrs({"127.0.0.30"});
             r.aaaa_answers["mx.ex.test"] = addrs({});
         },
         {},
         {"mx.ex.test"},
         {"127.0.0.30"}},
        {"nxdomain", [](dns::FakeResolver&) {}, RouteErrc::no_such_domain, {}, {}},
        {"servfail",
         [](dns::FakeResolver& r) { r.mx_answers["ex.test"] = Result<dns::MxAnswer>(dns::DnsErrc::servfail); },
         RouteErrc::dns_temporary,
         {},
         {}},
        {"timeout",
         [](dns::FakeResolver& r) { r.mx_answers["ex.test"] = Result<dns::MxAnswer>(dns::DnsErrc::timeout); },
         RouteErrc::dns_temporary,
         {},
         {}},
        {"bogus",
         [](dns::FakeResolver& r) { r.mx_answers["ex.test"] = Result<dns::MxAnswer>(dns::DnsErrc::bogus); },
         RouteErrc::dns_temporary,
         {},
         {}},
        {"mx host without address",
         [](dns::FakeResolver& r) {
             r.mx_answers["ex.test"] = mx({{10, "gone.ex.test"}});
             r.a_answers["gone.ex.test"] = addrs({});
             r.aaaa_answers["gone.ex.test"] = addrs({});
         },
         RouteErrc::no_addresses,
         {},
         {}},
        {"mx host lookup times out",
         [](dns::FakeResolver& r) {
             r.mx_answers["ex.test"] = mx({{10, "slow.ex.test"}});
             r.a_answers["slow.ex.test"] = Result<dns::AddressAnswer>(dns::DnsErrc::timeout);
             r.aaaa_answers["slow.ex.test"] = addrs({});
         },
         RouteErrc::dns_temporary,
         {},
         {}},
        {"one good host of two",
         [](dns::FakeResolver& r) {
             r.mx_answers["ex.test"] = mx({{10, "gone.ex.test"}, {20, "ok.ex.test"}});
             r.a_answers["ok.ex.test"] = addrs({"127.0.0.40"});
             r.aaaa_answers["ok.ex.test"] = addrs({});
         },
         {},
         {"gone.ex.test", "ok.ex.test"},
         {}},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        dns::FakeResolver r;
        c.setup(r);
        auto got = resolve(r, "ex.test");
        if (c.want_error) {
            ASSERT_FALSE(got.route.has_value());
            EXPECT_EQ(got.route.error(), c.want_error);
            EXPECT_FALSE(got.detail.empty());
            continue;
        }
        ASSERT_TRUE(got.route.has_value()) << got.route.error().message() << " " << got.detail;
        std::vector<std::string> hosts;
        for (const auto& h : got.route->hops) hosts.push_back(h.host);
        EXPECT_EQ(hosts, c.want_hosts);
        if (!c.want_first_addresses.empty()) {
            EXPECT_EQ(got.route->hops[0].addresses, c.want_first_addresses);
        }
        EXPECT_EQ(got.route->implicit_mx, c.want_implicit);
        EXPECT_EQ(got.route->mx_secure, c.want_mx_secure);
    }
}

TEST(Route, AddressLiteral) {
    dns::FakeResolver r;
    auto got = resolve(r, "[127.0.0.5]");
    ASSERT_TRUE(got.route.has_value());
    ASSERT_EQ(got.route->hops.size(), 1u);
    EXPECT_EQ(got.route->hops[0].addresses, std::vector<std::string>{"127.0.0.5"});
    EXPECT_TRUE(r.queries.empty());  // no DNS for a literal
}
