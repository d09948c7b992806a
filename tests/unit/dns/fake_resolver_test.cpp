// FakeResolver, the seam every DNS-using unit test stands on: answers and errors from its tables,
// NXDOMAIN for names not in them, and every query recorded in order as "TYPE name".
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "support/fake_resolver.hpp"

using namespace mailward;
using dns::DnsErrc;
namespace asio = boost::asio;

namespace {

template <class T>
Result<T> run(asio::io_context& io, asio::awaitable<Result<T>> op) {
    auto fut = asio::co_spawn(io, std::move(op), asio::use_future);
    io.restart();
    io.run();
    return fut.get();
}

}  // namespace

TEST(FakeResolver, AnswersFromTablesAndRecordsQueries) {
    dns::FakeResolver r;
    dns::MxAnswer mx;
    mx.records = {{10, "mx1.example.test"}, {20, "mx2.example.test"}};
    mx.security = dns::Security::secure;
    r.mx_answers["example.test"] = mx;
    dns::AddressAnswer a;
    a.addresses = {"127.0.0.10"};
    r.a_answers["mx1.example.test"] = a;
    dns::AddressAnswer none;
    none.nodata = true;
    r.aaaa_answers["mx1.example.test"] = none;
    dns::TlsaAnswer tlsa;
    tlsa.records = {{3, 1, 1, {0xab}}};
    tlsa.security = dns::Security::secure;
    r.tlsa_answers["_25._tcp.mx1.example.test"] = tlsa;
    r.txt_answers["_mta-sts.example.test"] = Result<dns::TxtAnswer>(DnsErrc::servfail);

    asio::io_context io;
    auto got_mx = run(io, r.mx("example.test"));
    ASSERT_TRUE(got_mx);
    EXPECT_EQ(got_mx->records.size(), 2u);
    EXPECT_EQ(got_mx->records[1].exchange, "mx2.example.test");
    EXPECT_EQ(got_mx->security, dns::Security::secure);
    auto got_a = run(io, r.a("mx1.example.test"));
    ASSERT_TRUE(got_a);
    EXPECT_EQ(got_a->addresses, std::vector<std::string>{"127.0.0.10"});
    auto got_aaaa = run(io, r.aaaa("mx1.example.test"));
    ASSERT_TRUE(got_aaaa);
    EXPECT_TRUE(got_aaaa->nodata);
    auto got_tlsa = run(io, r.tlsa("_25._tcp.mx1.example.test"));
    ASSERT_TRUE(got_tlsa);
    EXPECT_EQ(got_tlsa->records.at(0).usage, 3);
    auto got_txt = run(io, r.txt("_mta-sts.example.test"));
    ASSERT_FALSE(got_txt);
    EXPECT_EQ(got_txt.error(), DnsErrc::servfail);

    EXPECT_EQ(r.queries, (std::vector<std::string>{"MX example.test", "A mx1.example.test", "AAAA mx1.example.test",
                                                   "TLSA _25._tcp.mx1.example.test", "TXT _mta-sts.example.test"}));
}

TEST(FakeResolver, UnknownNamesAreNxdomainInEveryTable) {
    dns::FakeResolver r;
    dns::AddressAnswer a;
    a.addresses = {"127.0.0.1"};
    r.a_answers["host.test"] = a;  // an A record says nothing about other types or names
    asio::io_context io;
    EXPECT_EQ(run(io, r.mx("host.test")).error(), DnsErrc::nxdomain);
    EXPECT_EQ(run(io, r.aaaa("host.test")).error(), DnsErrc::nxdomain);
    EXPECT_EQ(run(io, r.a("other.test")).error(), DnsErrc::nxdomain);
    EXPECT_EQ(run(io, r.tlsa("_25._tcp.host.test")).error(), DnsErrc::nxdomain);
    EXPECT_EQ(run(io, r.txt("host.test")).error(), DnsErrc::nxdomain);
    EXPECT_TRUE(run(io, r.a("host.test")));
    EXPECT_EQ(r.queries.size(), 6u);
    EXPECT_EQ(r.queries.front(), "MX host.test");
    EXPECT_EQ(r.queries.back(), "A host.test");
}

TEST(FakeResolver, NamesAreMatchedExactly) {
    dns::FakeResolver r;
    r.mx_answers["example.test"] = dns::MxAnswer{};
    asio::io_context io;
    // No case folding or trailing-dot handling: the fake sees exactly what the code under test asks.
    EXPECT_EQ(run(io, r.mx("Example.test")).error(), DnsErrc::nxdomain);
    EXPECT_EQ(run(io, r.mx("example.test.")).error(), DnsErrc::nxdomain);
    EXPECT_EQ(r.queries, (std::vector<std::string>{"MX Example.test", "MX example.test."}));
}
