// The DNS error category and classification: which errors are temporary (retry) and which are
// permanent (NXDOMAIN only), their messages, and the Security names.
#include <gtest/gtest.h>

#include "common/result.hpp"
#include "dns/resolver.hpp"

using namespace mailward;
using dns::DnsErrc;

TEST(DnsErrors, ClassificationTable) {
    struct Case {
        error_code ec;
        bool temporary;
    };
    const Case cases[] = {
        {DnsErrc::nxdomain, false},
        {DnsErrc::servfail, true},
        {DnsErrc::timeout, true},
        {DnsErrc::bogus, true},
        {DnsErrc::bad_response, true},
        {DnsErrc::refused, true},
        {common::Errc::shutting_down, true},  // the resolver went away under a waiting query
        {error_code{}, false},                // no error is nothing to retry
    };
    for (const auto& c : cases) EXPECT_EQ(dns::is_temporary(c.ec), c.temporary) << c.ec.message();
}

TEST(DnsErrors, CategoryAndMessages) {
    EXPECT_STREQ(dns::dns_category().name(), "mailward.dns");
    error_code ec = DnsErrc::nxdomain;  // implicit: is_error_code_enum
    EXPECT_EQ(&ec.category(), &dns::dns_category());
    EXPECT_EQ(ec, DnsErrc::nxdomain);
    EXPECT_NE(ec, DnsErrc::servfail);
    EXPECT_NE(ec, common::Errc::not_found);  // same value in another category is another error
    for (auto e : {DnsErrc::nxdomain, DnsErrc::servfail, DnsErrc::timeout, DnsErrc::bogus, DnsErrc::bad_response,
                   DnsErrc::refused}) {
        const std::string m = make_error_code(e).message();
        EXPECT_FALSE(m.empty());
        EXPECT_EQ(m.find("unknown"), std::string::npos) << m;
    }
    EXPECT_NE(make_error_code(DnsErrc::nxdomain).message().find("NXDOMAIN"), std::string::npos);
    EXPECT_NE(make_error_code(DnsErrc::bogus).message().find("DNSSEC"), std::string::npos);
    EXPECT_EQ(error_code(99, dns::dns_category()).message(), "unknown DNS error");
    Result<dns::MxAnswer> r = DnsErrc::timeout;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), DnsErrc::timeout);
}

TEST(DnsErrors, SecurityNames) {
    EXPECT_EQ(dns::to_string(dns::Security::secure), "secure");
    EXPECT_EQ(dns::to_string(dns::Security::insecure), "insecure");
    EXPECT_EQ(dns::to_string(dns::Security::bogus), "bogus");
}
