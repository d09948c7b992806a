// The policy's cases of the classification table (classify.hpp): what decide() said before the
// attempts, after a TLS failure, and the local cases (store unreadable, no allowed host, no host
// reached, the queue lifetime). Each status and reason is chosen in classify.cpp only.
#include <gtest/gtest.h>

#include "delivery/classify.hpp"
#include "store/policy_store.hpp"

using namespace mailward;
using namespace mailward::delivery;
using namespace mailward::outbound;

namespace {

policy::Decision decision(policy::Action a, std::string status = "") {
    policy::Decision d;
    d.action = a;
    d.level = tls::Level::encrypt;
    d.status = std::move(status);
    d.summary = "the summary";
    return d;
}

}  // namespace

TEST(ClassifyPolicy, Decision) {
    using enum Outcome;
    struct Case {
        const char* name;
        policy::Decision d;
        bool held;
        Outcome want;
        const char* status;
        const char* reason;
    };
    const Case cases[] = {
        {"deliver: the attempts say", decision(policy::Action::deliver), false, temporary, "", ""},
        {"escrow", decision(policy::Action::escrow), true, tls_policy, "4.7.0", "awaiting escrow: the summary"},
        {"bounce with the decision's status", decision(policy::Action::bounce, "5.7.4"), true, permanent, "5.7.4",
         "the summary"},
        {"bounce without a status", decision(policy::Action::bounce), true, permanent, "5.7.0", "the summary"},
        {"defer", decision(policy::Action::defer), true, temporary, "4.7.0", "the summary"},
    };
    for (const auto& c : cases) {
        const auto got = classify_decision(c.d);
        ASSERT_EQ(got.has_value(), c.held) << c.name;
        if (!got) continue;
        EXPECT_EQ(got->outcome, c.want) << c.name;
        EXPECT_EQ(got->status, c.status) << c.name;
        EXPECT_EQ(got->reason, c.reason) << c.name;
        EXPECT_TRUE(got->diagnostic.empty()) << c.name;
    }
}

TEST(ClassifyPolicy, AfterTlsFailure) {
    using enum Outcome;
    struct Case {
        const char* name;
        policy::Decision after;
        bool incident;
        Outcome want;
        const char* status;
        const char* reason;
    };
    const Case cases[] = {
        {"escrow", decision(policy::Action::escrow), false, tls_policy, "4.7.5",
         "awaiting escrow: the summary; last TLS failure: mx: no STARTTLS"},
        {"bounce without a status", decision(policy::Action::bounce), false, permanent, "5.7.5",
         "the summary; last TLS failure: mx: no STARTTLS"},
        {"bounce with a status", decision(policy::Action::bounce, "5.7.10"), false, permanent, "5.7.10",
         "the summary; last TLS failure: mx: no STARTTLS"},
        {"defer", decision(policy::Action::defer), false, tls_policy, "4.7.5", "mx: no STARTTLS (the summary)"},
        {"defer, incident", decision(policy::Action::defer), true, tls_policy, "4.7.5",
         "mx: no STARTTLS (the summary; incident recorded)"},
    };
    for (const auto& c : cases) {
        Classified got;
        got.outcome = tls_policy;
        got.status = "4.7.5";
        got.reason = "mx: no STARTTLS";
        classify_after_tls_failure(got, c.after, c.incident);
        EXPECT_EQ(got.outcome, c.want) << c.name;
        EXPECT_EQ(got.status, c.status) << c.name;
        EXPECT_EQ(got.reason, c.reason) << c.name;
    }
}

TEST(ClassifyPolicy, LocalCases) {
    using enum Outcome;
    Evidence no_addr;
    no_addr.refusal = HopRefusal::no_addresses;
    no_addr.host = "mx.example.test";
    no_addr.route_detail = "no A or AAAA record";
    Evidence tlsa;
    tlsa.refusal = HopRefusal::tlsa_lookup_failed;
    tlsa.host = "mx.example.test";
    tlsa.route_detail = "bogus";
    struct Case {
        const char* name;
        Classified got;
        Outcome want;
        const char* status;
        bool next_host;
        const char* reason;
    };
    const Case cases[] = {
        {"policy store unreadable", classify_store_unreadable("disk I/O error"), temporary, "4.3.0", false,
         "local error: the policy store cannot be read (disk I/O error)"},
        {"no allowed host", classify_no_allowed_host("example.test", decision(policy::Action::deliver)), tls_policy,
         "4.7.5", false, "no MX host of example.test may be used at encrypt (the summary)"},
        {"no host reached", classify_unreachable("example.test"), temporary, "4.4.1", false,
         "no mail server of example.test could be reached"},
        {"host without addresses", classify(no_addr), temporary, "4.4.3", false,
         "mx.example.test: no A or AAAA record"},
        {"TLSA lookup failed", classify(tlsa), tls_policy, "4.7.5", true,
         "mx.example.test: TLSA lookup failed (bogus), DANE status unknown"},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(c.got.outcome, c.want) << c.name;
        EXPECT_EQ(c.got.status, c.status) << c.name;
        EXPECT_EQ(c.got.try_next_host, c.next_host) << c.name;
        EXPECT_EQ(c.got.reason, c.reason) << c.name;
    }
}

TEST(ClassifyPolicy, ExpiredStatus) {
    const struct {
        const char* last;
        const char* want;
    } cases[] = {{"4.7.5", "5.7.5"}, {"4.4.1", "5.4.1"}, {"", "5.4.7"}, {"5.1.1", "5.1.1"}};
    for (const auto& c : cases) {
        Classified last;
        last.status = c.last;
        EXPECT_EQ(expired_status(last), c.want) << c.last;
    }
}

// The names existing databases hold: they must not change.
TEST(ClassifyPolicy, IncidentKindNames) {
    using store::IncidentKind;
    const std::pair<IncidentKind, const char*> cases[] = {
        {IncidentKind::starttls_missing, "starttls_missing"},
        {IncidentKind::starttls_454, "starttls_454"},
        {IncidentKind::handshake_failed, "handshake_failed"},
        {IncidentKind::certificate_changed, "certificate_changed"},
        {IncidentKind::level_not_met, "level_not_met"},
    };
    for (const auto& [k, name] : cases) EXPECT_EQ(store::to_string(k), name);
}
