// The preload list parser: valid lists, every class of bad input with the key named, expiry.
#include "policy/preload.hpp"

#include <gtest/gtest.h>

using namespace mailward;
using namespace std::chrono;

TEST(Preload, ParsesDomainsAndLevels) {
    std::string error;
    auto list = policy::parse_preload(
        R"({"version": 1, "expires": "2027-06-30", "domains": {"Example.ORG": "verify", "b.test": "dane"}})", error);
    ASSERT_TRUE(list) << error;
    const auto before = sys_days(year(2027) / 6 / 29);
    EXPECT_EQ(list->level_for("example.org", before), tls::Level::verify);
    EXPECT_EQ(list->level_for("b.test", before), tls::Level::dane);
    EXPECT_EQ(list->level_for("c.test", before), std::nullopt);
    // Expired: ignored entirely.
    const auto after = sys_days(year(2027) / 6 / 30);
    EXPECT_TRUE(list->expired(after));
    EXPECT_EQ(list->level_for("example.org", after), std::nullopt);
}

TEST(Preload, WithoutExpiryNeverExpires) {
    std::string error;
    auto list = policy::parse_preload(R"({"domains": {}})", error);
    ASSERT_TRUE(list) << error;
    EXPECT_FALSE(list->expired(sys_days(year(2100) / 1 / 1)));
    EXPECT_TRUE(list->domains.empty());
}

TEST(Preload, RejectsBadInputNamingTheProblem) {
    struct Case {
        const char* json;
        const char* want;
    };
    const Case cases[] = {
        {"", "not a JSON object"},
        {"[1,2]", "not a JSON object"},
        {"{\"domains\": {\"a.test\": \"verify\"}", "not a JSON object"},
        {R"({"version": 2, "domains": {}})", "version"},
        {R"({"version": "1", "domains": {}})", "version"},
        {R"({"expires": "soon", "domains": {}})", "expires"},
        {R"({"expires": 1767225600, "domains": {}})", "expires"},
        {R"({"version": 1})", "domains: missing"},
        {R"({"domains": ["a.test"]})", "domains: missing or not an object"},
        {R"({"domains": {"a.test": "strong"}})", "domains.\"a.test\": level"},
        {R"({"domains": {"a.test": 3}})", "domains.\"a.test\": level"},
        {R"({"domains": {"bad domain": "verify"}})", "domains.\"bad domain\": not a domain name"},
        {R"({"domains": {".a.test": "verify"}})", "not a domain name"},
        {R"({"domains": {"a..test": "verify"}})", "not a domain name"},
        {R"({"domains": {"": "verify"}})", "not a domain name"},
        // since the one domain check (common/domain.hpp): RFC 1035 2.3.1, no '_', no '-' at a
        // label's edge, labels of at most 63, not an address
        {R"({"domains": {"a_b.test": "verify"}})", "domains.\"a_b.test\": not a domain name"},
        {R"({"domains": {"-a.test": "verify"}})", "not a domain name"},
        {R"({"domains": {"a-.test": "verify"}})", "not a domain name"},
        {R"({"domains": {"192.0.2.1": "verify"}})", "not a domain name"},
        {R"({"domains": {"a.test.": "verify"}})", "not a domain name"},
        {R"({"domains": {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test": "verify"}})",
         "not a domain name"},
    };
    for (const auto& c : cases) {
        std::string error;
        EXPECT_FALSE(policy::parse_preload(c.json, error).has_value()) << c.json;
        EXPECT_NE(error.find(c.want), std::string::npos) << c.json << " -> " << error;
    }
}

TEST(Preload, MissingFileIsAnErrorNamingTheFile) {
    std::string error;
    EXPECT_FALSE(policy::load_preload("/nonexistent/preload.json", error).has_value());
    EXPECT_NE(error.find("/nonexistent/preload.json"), std::string::npos) << error;
}
