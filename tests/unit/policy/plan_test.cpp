// plan() as data: one row per situation (the capability rule, learned with and without evidence,
// observed levels, MTA-STS mx patterns and status, an expired preload list, DANE per host and for
// every host, refused hosts, the TLSA lookups a plan asks for, REQUIRETLS, TLS-Required: No, the
// sender modes, a probe that did not finish), then the after-failure answer, check's verdict, when
// a probe is due and the TLSA answer's reading.
#include "policy/plan.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <ostream>

using namespace mailward;
using namespace mailward::policy;
using namespace std::chrono_literals;
using tls::Level;
using Mode = config::SenderMode;
using Cap = DomainCapability;

namespace {

const TimePoint now = std::chrono::sys_days{std::chrono::year{2026} / 11 / 28} + 12h;

MxEvidence ev(const std::string& host, const std::string& level, std::string spki = {}) {
    MxEvidence e;
    e.host = host;
    e.address = "192.0.2.1";
    e.level = level;
    e.spki_sha256 = std::move(spki);
    return e;
}

dns::TlsaRecord tlsa_record(std::uint8_t usage) {
    dns::TlsaRecord r;
    r.usage = usage;
    r.selector = 1;
    r.matching_type = 1;
    r.data = {0xab, 0xcd};
    return r;
}

// A readable way to write a row's facts: F().learned(Level::encrypt, {...}).sts_enforce({...})
struct F {
    DestinationFacts d;
    MessageFacts m;
    F() {
        d.domain = "example.org";
        d.dane = true;
        for (const char* h : {"mx1.example.org", "mx2.example.org"}) {
            MxHostFacts f;
            f.host = h;
            d.route.hosts.push_back(f);
        }
        m.mode = Mode::tls_or_escrow;
        m.received_at = now - 1min;
    }
    F& mode(Mode x) { return m.mode = x, *this; }
    F& learned(Level l, std::vector<MxEvidence> evidence = {}) {
        LearnedPolicy p;
        p.domain = d.domain;
        p.level = l;
        p.last_confirmed = now - 1h;
        p.evidence = std::move(evidence);
        d.learned = p;
        return *this;
    }
    F& observed(std::vector<MxFact> o) { return d.observed = std::move(o), *this; }
    F& sts_enforce(std::vector<std::string> mx) {
        d.mta_sts.policy = MtaStsPolicy{MtaStsPolicy::Mode::enforce, std::move(mx), 86400s};
        d.mta_sts.status = "mta-sts: enforce (id 1, cached)";
        return *this;
    }
    F& preload_expired() {
        d.preload.expired_entry = true;
        d.preload.source = "/etc/preload.json";
        return *this;
    }
    F& secure_mx() {
        d.route.mx_secure = true;
        for (auto& h : d.route.hosts) h.addresses_secure = true;
        return *this;
    }
    F& tlsa(std::size_t host, TlsaFact::State s) {
        auto& t = d.route.hosts.at(host).tlsa;
        t.state = s;
        if (s == TlsaFact::State::records) t.records = {tlsa_record(3)};
        if (s == TlsaFact::State::lookup_failed) t.error = "SERVFAIL";
        return *this;
    }
    F& no_addresses(std::size_t host) {
        d.route.hosts.at(host).has_addresses = false;
        d.route.hosts.at(host).error = "no A or AAAA";
        return *this;
    }
    F& address_lookup_failed(std::size_t host) {
        d.route.hosts.at(host).address_lookup_failed = true;
        d.route.hosts.at(host).error = "AAAA: bogus";
        return *this;
    }
    F& requiretls() { return m.requiretls = true, *this; }
    F& tls_required_no(bool allowed) {
        m.tls_required_no = true;
        m.tls_optional = {allowed, allowed ? "account bob may" : "account eve may not"};
        return *this;
    }
    F& override_to(Level l) {
        Override o;
        o.domain = d.domain;
        o.level = l;
        o.reason = "partner fixing TLS";
        d.override = o;
        return *this;
    }
    F& probe_ran() { return d.probe_ran = true, *this; }
};

// The expected per-host plan: "mx1.example.org@dane", "mx2.example.org!tlsa_lookup_failed".
std::string host_text(const PlannedHost& h) {
    switch (h.refused) {
        case HostRefusal::none: return h.host + "@" + std::string(tls::to_string(h.level));
        case HostRefusal::no_addresses: return h.host + "!no_addresses";
        case HostRefusal::address_lookup_failed: return h.host + "!address_lookup_failed";
        case HostRefusal::tlsa_lookup_failed:
            return h.host + "!tlsa_lookup_failed@" + std::string(tls::to_string(h.level));
    }
    return "?";
}

struct Row {
    const char* name;
    F facts;
    Cap capability;
    Level level;
    Action action;
    std::string status;
    std::vector<std::string> hosts;       // host_text() of each planned host, in order
    std::vector<std::string> reasons_in;  // substrings some reason contains
    std::string first_reason = {};        // the first reason, when it matters
    std::vector<std::string> tlsa_wanted = {};
};

const std::string mx1 = "mx1.example.org", mx2 = "mx2.example.org";

std::vector<Row> rows() {
    return {
        {"learned encrypt with evidence: forced TLS via every host",
         F().learned(Level::encrypt, {ev(mx1, "encrypt"), ev(mx2, "verify")}),
         Cap::tls_capable,
         Level::encrypt,
         Action::deliver,
         "",
         {mx1 + "@encrypt", mx2 + "@encrypt"},
         {"learned: encrypt"}},
        {"learned encrypt without evidence is TLS-capable (the one rule)",
         F().learned(Level::encrypt),
         Cap::tls_capable,
         Level::encrypt,
         Action::deliver,
         "",
         {mx1 + "@encrypt", mx2 + "@encrypt"},
         {"every MX host does TLS"}},
        {"learned may without evidence and nothing observed: unknown, probe first",
         F().mode(Mode::tls_only).learned(Level::may),
         Cap::unknown,
         Level::encrypt,
         Action::defer,
         "",
         {mx1 + "@encrypt", mx2 + "@encrypt"},
         {"probe every MX host"}},
        {"learned may without evidence, the log saw no TLS: no_tls, tls-only bounces",
         F().mode(Mode::tls_only).learned(Level::may).observed({{mx1, Level::none}}),
         Cap::no_tls,
         Level::encrypt,
         Action::bounce,
         "5.7.4",
         {},
         {"do not support TLS"}},
        {"evidence wins over what was observed",
         F().learned(Level::may, {ev(mx1, "encrypt"), ev(mx2, "encrypt")}).observed({{mx1, Level::none}}),
         Cap::tls_capable,
         Level::encrypt,
         Action::deliver,
         "",
         {mx1 + "@encrypt", mx2 + "@encrypt"},
         {}},
        {"not learned, observed TLS on every host",
         F().observed({{mx1, Level::verify}, {mx2, Level::encrypt}}),
         Cap::tls_capable,
         Level::encrypt,
         Action::deliver,
         "",
         {mx1 + "@encrypt", mx2 + "@encrypt"},
         {}},
        {"partial TLS: only the hosts that do TLS",
         F().learned(Level::may, {ev(mx1, "none"), ev(mx2, "encrypt")}),
         Cap::partial_tls,
         Level::encrypt,
         Action::deliver,
         "",
         {mx2 + "@encrypt"},
         {"only the MX hosts that do TLS"}},
        {"MTA-STS enforce: verify, only matching hosts, its status first",
         F().learned(Level::encrypt).sts_enforce({mx2}),
         Cap::tls_capable,
         Level::verify,
         Action::deliver,
         "",
         {mx2 + "@verify"},
         {"MTA-STS enforce"},
         "mta-sts: enforce (id 1, cached)"},
        {"an expired preload list is named first and ignored",
         F().learned(Level::encrypt).sts_enforce({mx1, mx2}).preload_expired(),
         Cap::tls_capable,
         Level::verify,
         Action::deliver,
         "",
         {mx1 + "@verify", mx2 + "@verify"},
         {},
         "preload list /etc/preload.json has expired: ignored"},
        {"DANE on every host of a secure MX set: the domain requires dane",
         F().learned(Level::encrypt).secure_mx().tlsa(0, TlsaFact::State::records).tlsa(1, TlsaFact::State::records),
         Cap::tls_capable,
         Level::dane,
         Action::deliver,
         "",
         {mx1 + "@dane", mx2 + "@dane"},
         {"DANE: secure TLSA for every MX host"}},
        {"DANE on one host: that host at dane, the other at the domain's level",
         F().learned(Level::encrypt).secure_mx().tlsa(0, TlsaFact::State::none).tlsa(1, TlsaFact::State::records),
         Cap::tls_capable,
         Level::encrypt,
         Action::deliver,
         "",
         {mx1 + "@encrypt", mx2 + "@dane"},
         {}},
        {"a failed TLSA lookup refuses the host (at dane)",
         F().learned(Level::encrypt).secure_mx().tlsa(0, TlsaFact::State::lookup_failed).tlsa(1, TlsaFact::State::none),
         Cap::tls_capable,
         Level::encrypt,
         Action::deliver,
         "",
         {mx1 + "!tlsa_lookup_failed@dane", mx2 + "@encrypt"},
         {}},
        {"TLSA in an insecure MX set is not used",
         F().learned(Level::encrypt).tlsa(0, TlsaFact::State::records),
         Cap::tls_capable,
         Level::encrypt,
         Action::deliver,
         "",
         {mx1 + "@encrypt", mx2 + "@encrypt"},
         {}},
        {"a failed address lookup in a secure MX set refuses the host (RFC 7672 2.1.1)",
         F().learned(Level::encrypt).secure_mx().address_lookup_failed(0).tlsa(1, TlsaFact::State::none),
         Cap::tls_capable,
         Level::encrypt,
         Action::deliver,
         "",
         {mx1 + "!address_lookup_failed", mx2 + "@encrypt"},
         {}},
        {"a failed address lookup in an insecure MX set does not",
         F().learned(Level::encrypt).address_lookup_failed(0),
         Cap::tls_capable,
         Level::encrypt,
         Action::deliver,
         "",
         {mx1 + "@encrypt", mx2 + "@encrypt"},
         {}},
        {"a host without addresses is in the plan as refused",
         F().learned(Level::encrypt).no_addresses(0),
         Cap::tls_capable,
         Level::encrypt,
         Action::deliver,
         "",
         {mx1 + "!no_addresses", mx2 + "@encrypt"},
         {}},
        {"secure hosts not looked up yet: the plan asks for their TLSA",
         F().learned(Level::encrypt).secure_mx().tlsa(1, TlsaFact::State::none),
         Cap::tls_capable,
         Level::encrypt,
         Action::deliver,
         "",
         {mx1 + "@encrypt", mx2 + "@encrypt"},
         {},
         "",
         {mx1}},
        {"REQUIRETLS, unauthenticated MX set, tls-or-escrow: escrow",
         F().learned(Level::encrypt).requiretls(),
         Cap::tls_capable,
         Level::verify,
         Action::escrow,
         "",
         {},
         {"REQUIRETLS"}},
        {"REQUIRETLS, unauthenticated MX set, tls-only: bounce 5.7.30",
         F().mode(Mode::tls_only).learned(Level::encrypt).requiretls(),
         Cap::tls_capable,
         Level::verify,
         Action::bounce,
         "5.7.30",
         {},
         {"REQUIRETLS"}},
        {"REQUIRETLS over a secure MX set: deliver at verify",
         F().learned(Level::encrypt)
             .requiretls()
             .secure_mx()
             .tlsa(0, TlsaFact::State::none)
             .tlsa(1, TlsaFact::State::none),
         Cap::tls_capable,
         Level::verify,
         Action::deliver,
         "",
         {mx1 + "@verify", mx2 + "@verify"},
         {}},
        {"TLS-Required: No from a sender with the right: plaintext allowed",
         F().mode(Mode::tls_only).learned(Level::verify).tls_required_no(true),
         Cap::tls_capable,
         Level::may,
         Action::deliver,
         "",
         {mx1 + "@may", mx2 + "@may"},
         {"lowered to may"}},
        {"TLS-Required: No without the right is ignored",
         F().learned(Level::verify).tls_required_no(false),
         Cap::tls_capable,
         Level::verify,
         Action::deliver,
         "",
         {mx1 + "@verify", mx2 + "@verify"},
         {"TLS-Required: No ignored"}},
        {"escrow-always escrows",
         F().mode(Mode::escrow_always).learned(Level::encrypt),
         Cap::tls_capable,
         Level::encrypt,
         Action::escrow,
         "",
         {},
         {"escrow-always"}},
        {"opportunistic to an unknown domain: TLS if offered",
         F().mode(Mode::opportunistic),
         Cap::unknown,
         Level::may,
         Action::deliver,
         "",
         {mx1 + "@may", mx2 + "@may"},
         {}},
        {"a probe that did not finish is said so",
         F().probe_ran(),
         Cap::unknown,
         Level::encrypt,
         Action::defer,
         "",
         {mx1 + "@encrypt", mx2 + "@encrypt"},
         {"the probe did not finish: retry later"}},
        {"an admin override to may lowers a learned verify for an opportunistic sender",
         F().mode(Mode::opportunistic).learned(Level::verify).override_to(Level::may),
         Cap::tls_capable,
         Level::may,
         Action::deliver,
         "",
         {mx1 + "@may", mx2 + "@may"},
         {"admin override to may"}},
    };
}

void PrintTo(const Row& r, std::ostream* os) { *os << r.name; }

class PlanRows : public ::testing::TestWithParam<Row> {};

TEST_P(PlanRows, Plans) {
    const Row& r = GetParam();
    const auto p = plan(r.facts.d, r.facts.m, now);
    std::string all;
    for (const auto& x : p.decision.reasons) all += x + "\n";
    EXPECT_EQ(p.capability, r.capability) << to_string(p.capability) << "\n" << all;
    EXPECT_EQ(p.decision.level, r.level) << tls::to_string(p.decision.level) << "\n" << all;
    EXPECT_EQ(p.decision.action, r.action) << to_string(p.decision.action) << "\n" << all;
    EXPECT_EQ(p.decision.status, r.status);
    std::vector<std::string> hosts;
    if (p.decision.action == Action::deliver || p.decision.action == Action::defer) {
        for (const auto& h : p.hosts) hosts.push_back(host_text(h));
    }
    EXPECT_EQ(hosts, r.hosts) << all;
    for (const auto& want : r.reasons_in) EXPECT_NE(all.find(want), std::string::npos) << want << "\n" << all;
    if (!r.first_reason.empty()) {
        ASSERT_FALSE(p.decision.reasons.empty());
        EXPECT_EQ(p.decision.reasons.front(), r.first_reason);
    }
    EXPECT_EQ(p.tlsa_wanted, r.tlsa_wanted);
}

INSTANTIATE_TEST_SUITE_P(Plan, PlanRows, ::testing::ValuesIn(rows()), [](const auto& info) {
    std::string n;
    for (char c : std::string(info.param.name)) n += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    return n;
});

TEST(Plan, HostsCarryTheirOwnTlsaKeysAndReasons) {
    auto f = F().learned(Level::encrypt, {ev(mx1, "encrypt", "aa"), ev(mx2, "encrypt", "bb")})
                 .secure_mx()
                 .tlsa(0, TlsaFact::State::records)
                 .tlsa(1, TlsaFact::State::none);
    const auto p = plan(f.d, f.m, now);
    ASSERT_EQ(p.hosts.size(), 2u);
    EXPECT_EQ(p.hosts[0].tlsa.size(), 1u);
    EXPECT_TRUE(p.hosts[1].tlsa.empty());
    EXPECT_EQ(p.hosts[0].known_spki, std::vector<std::string>{"aa"});
    EXPECT_EQ(p.hosts[1].known_spki, std::vector<std::string>{"bb"});
    EXPECT_EQ(p.hosts[0].why.back(), "DANE: secure TLSA records for mx1.example.org");
    EXPECT_EQ(p.hosts[1].why, p.decision.reasons);
    EXPECT_EQ(p.hosts[1].index, 1u);
    EXPECT_EQ(p.downgrade_floor, Level::encrypt);
    EXPECT_TRUE(p.confirms_learned);
}

TEST(Plan, DowngradeFloorAndConfirmation) {
    struct Case {
        F f;
        std::optional<Level> floor;
        bool confirms;
    } cases[] = {
        {F().learned(Level::verify, {ev(mx1, "verify")}), Level::verify, true},
        {F().observed({{mx1, Level::encrypt}, {mx2, Level::encrypt}}), Level::encrypt, false},
        {F().learned(Level::may, {ev(mx1, "may")}), std::nullopt, false},
        {F(), std::nullopt, false},
    };
    for (const auto& c : cases) {
        const auto p = plan(c.f.d, c.f.m, now);
        EXPECT_EQ(p.downgrade_floor, c.floor);
        EXPECT_EQ(p.confirms_learned, c.confirms);
    }
}

TEST(Plan, AfterTlsFailure) {
    struct Case {
        const char* name;
        F f;
        TimePoint first_failure;
        TimePoint at;
        Action action;
        std::string status;
    } cases[] = {
        {"tls-or-escrow before escrow_after: defer", F().learned(Level::encrypt), now - 10min, now, Action::defer, ""},
        {"tls-or-escrow after escrow_after: escrow", F().learned(Level::encrypt), now - 2h, now, Action::escrow, ""},
        {"tls-only at the queue lifetime: bounce 5.7.5", F().mode(Mode::tls_only).learned(Level::encrypt), now - 2h,
         now + 24h * 6, Action::bounce, "5.7.5"},
        {"TLS-Required: No honoured: deliver", F().mode(Mode::tls_only).tls_required_no(true), now, now,
         Action::deliver, ""},
    };
    for (auto& c : cases) {
        c.f.m.first_failure = c.first_failure;
        const auto d = plan_after_tls_failure(c.f.d, c.f.m, c.at);
        EXPECT_EQ(d.action, c.action) << c.name << ": " << d.summary;
        EXPECT_EQ(d.status, c.status) << c.name;
    }
}

TEST(Plan, HostsVerdictForCheck) {
    struct Case {
        std::vector<MxFact> addresses;
        Level level;
        Cap capability;
    } cases[] = {
        {{}, Level::none, Cap::unknown},
        {{{mx1, Level::dane}, {mx1, Level::verify}}, Level::verify, Cap::tls_capable},
        {{{mx1, Level::verify}, {mx2, Level::may}}, Level::may, Cap::partial_tls},
        {{{mx1, Level::none}, {mx2, Level::may}}, Level::none, Cap::no_tls},
        {{{mx1, Level::encrypt}, {mx1, Level::none}}, Level::none, Cap::no_tls},
    };
    for (const auto& c : cases) {
        const auto v = hosts_verdict(c.addresses);
        EXPECT_EQ(v.level, c.level) << c.addresses.size();
        EXPECT_EQ(v.capability, c.capability) << c.addresses.size();
    }
}

TEST(Plan, ProbeDue) {
    LearnedPolicy tls_fresh, tls_stale, plain_stale;
    tls_fresh.level = tls_stale.level = Level::encrypt;
    tls_fresh.last_confirmed = now - 23h;
    tls_stale.last_confirmed = now - 48h;
    tls_stale.last_probe = now - 25h;
    plain_stale.level = Level::none;
    plain_stale.last_confirmed = now - 24h;
    plain_stale.last_probe = now - 61min;
    EXPECT_EQ(probe_due(std::nullopt, Mode::tls_only, now), "first contact");
    EXPECT_EQ(probe_due(std::nullopt, Mode::opportunistic, now), "");
    EXPECT_EQ(probe_due(tls_fresh, Mode::tls_only, now), "");
    EXPECT_EQ(probe_due(tls_stale, Mode::opportunistic, now), "scheduled re-probe");
    EXPECT_EQ(probe_due(plain_stale, Mode::tls_or_escrow, now), "scheduled re-probe");
}

TEST(Plan, TlsaFactReadsOnlySecureDaneRecords) {
    dns::TlsaAnswer secure{{tlsa_record(3), tlsa_record(1), tlsa_record(2)}, dns::Security::secure, false};
    dns::TlsaAnswer insecure{{tlsa_record(3)}, dns::Security::insecure, false};
    dns::TlsaAnswer pkix_only{{tlsa_record(1)}, dns::Security::secure, false};
    EXPECT_EQ(tlsa_fact(secure).state, TlsaFact::State::records);
    EXPECT_EQ(tlsa_fact(secure).records.size(), 2u);
    EXPECT_EQ(tlsa_fact(insecure).state, TlsaFact::State::none);
    EXPECT_EQ(tlsa_fact(pkix_only).state, TlsaFact::State::none);
    EXPECT_EQ(tlsa_fact(Result<dns::TlsaAnswer>(dns::DnsErrc::nxdomain)).state, TlsaFact::State::none);
    const auto failed = tlsa_fact(Result<dns::TlsaAnswer>(dns::DnsErrc::servfail));
    EXPECT_EQ(failed.state, TlsaFact::State::lookup_failed);
    EXPECT_FALSE(failed.error.empty());
}

TEST(Plan, TlsRequiredNoForQueueShow) {
    MessageFacts m;
    EXPECT_FALSE(tls_required_no_of(m));
    m.tls_required_no = true;
    m.tls_optional = {true, "account bob may"};
    ASSERT_TRUE(tls_required_no_of(m));
    EXPECT_TRUE(tls_required_no_of(m)->honoured);
    m.requiretls = true;  // REQUIRETLS wins (RFC 8689 section 5)
    EXPECT_FALSE(tls_required_no_of(m)->honoured);
}

TEST(Plan, StrictestCombinesLevels) {
    EXPECT_EQ(strictest(Level::verify, Level::may), Level::verify);
    EXPECT_EQ(strictest(Level::encrypt, Level::dane), Level::dane);
}

}  // namespace
