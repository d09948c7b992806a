// MX hosts under a Decision: per-host facts from per-address evidence (the weakest address wins),
// the domain's capability (partial TLS is not TLS-capable), RFC 8461 mx patterns, and the filter
// that keeps non-TLS hosts and hosts outside an MTA-STS policy away from the delivery.
#include "policy/mx_hosts.hpp"

#include <gtest/gtest.h>

using namespace mailward;
using namespace mailward::policy;
using tls::Level;
using Cap = DomainCapability;

namespace {

MxEvidence at(std::string host, std::string address, std::string level) {
    MxEvidence e;
    e.host = std::move(host);
    e.address = std::move(address);
    e.level = std::move(level);
    return e;
}

TEST(MxHosts, FactsFromEvidenceTakeTheWeakestAddress) {
    const auto facts =
        facts_from_evidence({at("mx1.example", "192.0.2.1", "verify"), at("mx2.example", "192.0.2.2", "encrypt"),
                             at("mx1.example", "2001:db8::1", "may"), at("mx3.example", "192.0.2.3", "bogus")});
    ASSERT_EQ(facts.size(), 3u);
    EXPECT_EQ(facts[0].host, "mx1.example");
    EXPECT_EQ(facts[0].level, Level::may);  // one address without TLS makes the host a non-TLS host
    EXPECT_EQ(facts[1].level, Level::encrypt);
    EXPECT_EQ(facts[2].level, Level::none);  // an unknown name counts as none
    EXPECT_TRUE(facts_from_evidence({}).empty());
}

TEST(MxHosts, CapabilityTable) {
    using L = std::optional<Level>;
    struct Case {
        const char* name;
        std::vector<L> levels;
        Cap want;
    };
    const Case cases[] = {
        {"no hosts", {}, Cap::unknown},
        {"one TLS host", {Level::encrypt}, Cap::tls_capable},
        {"all TLS", {Level::verify, Level::dane, Level::encrypt}, Cap::tls_capable},
        {"one without TLS", {Level::verify, Level::may}, Cap::partial_tls},
        {"none does TLS", {Level::may, Level::none}, Cap::no_tls},
        {"an unprobed host", {Level::verify, std::nullopt}, Cap::unknown},
        {"unprobed and no TLS", {Level::none, std::nullopt}, Cap::unknown},
    };
    for (const auto& c : cases) {
        std::vector<MxFact> hosts;
        for (std::size_t i = 0; i < c.levels.size(); ++i) hosts.push_back({"mx" + std::to_string(i), c.levels[i]});
        EXPECT_EQ(capability_of(hosts), c.want) << c.name;
    }
}

// RFC 8461 section 4.1, as used by the MX host filter and by the MTA-STS policy check.
TEST(MxHosts, MtaStsPatterns) {
    struct Case {
        const char* pattern;
        const char* host;
        bool match;
    };
    const Case cases[] = {
        {"mail.example.com", "mail.example.com", true},
        {"mail.example.com", "MAIL.Example.COM", true},
        {"mail.example.com", "mail2.example.com", false},
        {"mail.example.com", "x.mail.example.com", false},
        {"*.example.net", "mx1.example.net", true},
        {"*.example.net", "MX1.EXAMPLE.NET", true},
        {"*.example.net", "example.net", false},      // the wildcard is one whole label
        {"*.example.net", "a.b.example.net", false},  // and only one
        {"*.example.net", ".example.net", false},
        {"*.example.net", "mx1.example.net.evil", false},
        {"*.example.net", "mx1example.net", false},
        {"", "mx.example", false},
        {"mx.example", "", false},
        {"Mail.Example.Com", "mail.example.com", true},
        {"mail.example.com", "mail.example.com.", true},
        {"mail.example.com.", "mail.example.com", true},
        {"*.example.com", "mx1.example.com", true},
        {"*.example.com", "MX1.EXAMPLE.COM.", true},
        {"*.Example.Com", "mx1.example.com", true},
        {"*.example.com", "example.com", false},      // the wildcard is one whole label
        {"*.example.com", "a.b.example.com", false},  // exactly one label
        {"*.example.com", ".example.com", false},
        {"*.example.com", "mx1.example.comx", false},
        {"*.example.com", "mx1.xexample.com", false},
        {"*.example.com", "mx1example.com", false},
        {"*.mail.example.com", "a.mail.example.com", true},
        {"*.mail.example.com", "mail.example.com", false},
        {"", "mail.example.com", false},
        {"mail.example.com", "", false},
    };
    for (const auto& c : cases) EXPECT_EQ(mx_pattern_matches(c.pattern, c.host), c.match) << c.pattern << " " << c.host;
}

TEST(MxHosts, UsableHostsTable) {
    const std::vector<MxFact> hosts = {{"mx1.example.org", Level::verify},
                                       {"mx2.example.org", Level::may},
                                       {"mx3.example.org", Level::encrypt},
                                       {"new.example.org", std::nullopt},
                                       {"backup.other.example", Level::verify}};
    struct Case {
        const char* name;
        Level level;
        bool only_tls;
        std::vector<std::string> patterns;
        std::vector<std::string> want;
    };
    const Case cases[] = {
        {"no filter",
         Level::may,
         false,
         {},
         {"mx1.example.org", "mx2.example.org", "mx3.example.org", "new.example.org", "backup.other.example"}},
        {"TLS hosts only (encrypt)",
         Level::encrypt,
         true,
         {},
         {"mx1.example.org", "mx3.example.org", "new.example.org", "backup.other.example"}},
        {"TLS hosts only (verify)",
         Level::verify,
         true,
         {},
         {"mx1.example.org", "new.example.org", "backup.other.example"}},
        {"only_tls at may still needs encrypt",
         Level::may,
         true,
         {},
         {"mx1.example.org", "mx3.example.org", "new.example.org", "backup.other.example"}},
        {"MTA-STS patterns",
         Level::verify,
         false,
         {"*.example.org"},
         {"mx1.example.org", "mx2.example.org", "mx3.example.org", "new.example.org"}},
        {"patterns and TLS", Level::verify, true, {"mx1.example.org", "mx2.example.org"}, {"mx1.example.org"}},
        {"nothing left", Level::dane, true, {"mx2.example.org"}, {}},
    };
    for (const auto& c : cases) {
        Decision d;
        d.level = c.level;
        d.only_tls_hosts = c.only_tls;
        d.mx_patterns = c.patterns;
        EXPECT_EQ(usable_hosts(hosts, d), c.want) << c.name;
    }
}

// The full chain for a partial-TLS domain: evidence -> capability -> decision -> hosts.
TEST(MxHosts, PartialTlsDomainNeverUsesItsPlaintextHost) {
    const auto facts = facts_from_evidence(
        {at("mx1.mixed.example", "192.0.2.1", "verify"), at("mx2.mixed.example", "192.0.2.2", "may")});
    const auto cap = capability_of(facts);
    ASSERT_EQ(cap, Cap::partial_tls);
    PolicyInputs in;
    in.domain = "mixed.example";
    const auto now = Clock::now();
    for (auto mode : {config::SenderMode::tls_or_escrow, config::SenderMode::tls_only}) {
        in.mode = mode;
        const auto d = decide(in, BeforeAttempt{cap}, now);
        EXPECT_EQ(d.action, Action::deliver);
        EXPECT_EQ(usable_hosts(facts, d), std::vector<std::string>{"mx1.mixed.example"});
    }
    in.mode = config::SenderMode::opportunistic;
    const auto d = decide(in, BeforeAttempt{cap}, now);
    EXPECT_EQ(usable_hosts(facts, d).size(), 2u);
    EXPECT_TRUE(d.plaintext_allowed);
}

}  // namespace
