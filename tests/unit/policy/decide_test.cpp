// decide() as data: one row per scenario (every cell of docs/design.md's sender-mode table, every
// policy source, admin overrides live and expired, TLS-Required: No with and without REQUIRETLS,
// partial TLS, downgrades), then every combination of sources checked against the invariants that
// must hold whatever the combination (never plaintext where a source or the sender forbids it).
#include "policy/decide.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <ostream>

#include "store/policy_store.hpp"

using namespace mailward;
using namespace mailward::policy;
using namespace std::chrono_literals;
using tls::Level;
using Mode = config::SenderMode;
using Cap = DomainCapability;
using StsMode = MtaStsPolicy::Mode;

namespace {

const TimePoint now = std::chrono::sys_days{std::chrono::year{2026} / 11 / 28} + 12h;
const TimePoint confirmed = std::chrono::sys_days{std::chrono::year{2026} / 11 / 20} + 9h;

MxEvidence host_evidence(std::string host, std::string address) {
    MxEvidence e;
    e.host = std::move(host);
    e.address = std::move(address);
    e.level = "verify";
    e.starttls = true;
    return e;
}

// A readable way to write a row's inputs: In().mode(Mode::tls_only).learned(Level::verify)
struct In {
    PolicyInputs v;
    In() {
        v.domain = "example.org";
        v.mode = Mode::tls_or_escrow;
    }
    In& mode(Mode m) { return v.mode = m, *this; }
    In& stat(Level l) { return v.static_level = l, *this; }
    In& learned(Level l, int hosts = 3) {
        LearnedPolicy p;
        p.domain = "example.org";
        p.level = l;
        p.first_seen = confirmed - 24h * 30;
        p.last_confirmed = confirmed;
        for (int i = 0; i < hosts; ++i) {
            const std::string h = "mx" + std::to_string(i) + ".example.org";
            p.evidence.push_back(host_evidence(h, "192.0.2." + std::to_string(i)));
            p.evidence.push_back(host_evidence(h, "2001:db8::" + std::to_string(i)));
        }
        v.learned = p;
        return *this;
    }
    In& dane() { return v.dane_usable = true, *this; }
    In& sts(StsMode m, std::vector<std::string> mx = {"mx1.example.org", "*.mail.example.org"}) {
        v.mta_sts = MtaStsPolicy{m, std::move(mx), std::chrono::seconds(86400)};
        return *this;
    }
    In& preload(Level l) { return v.preload = l, *this; }
    In& route(std::optional<Level> floor, std::string name = "smarthost") {
        v.route = RouteInput{std::move(name), floor};
        return *this;
    }
    In& requiretls(bool mx_authenticated = true) {
        v.requiretls = true;
        v.mx_authenticated = mx_authenticated;
        return *this;
    }
    // The header, from a sender given the right (allowed) or not.
    In& tls_required_no(bool allowed = true) {
        v.tls_required_no = true;
        v.tls_optional = allowed ? TlsOptionalRight{true, "account bob was given --allow-tls-optional"}
                                 : TlsOptionalRight{false, "account eve may not use it"};
        return *this;
    }
    In& override_to(Level l, std::optional<TimePoint> expires = now + 48h, std::string reason = "partner fixing TLS") {
        Override o;
        o.domain = "example.org";
        o.level = l;
        o.reason = std::move(reason);
        o.expires = expires;
        o.set_at = now - 1h;
        o.set_by = "alice";
        v.override = o;
        return *this;
    }
    operator PolicyInputs() const { return v; }
};

Situation before(Cap c) { return BeforeAttempt{c}; }
// A TLS failure: first one `since` ago, message received `age` ago.
Situation failed(std::chrono::system_clock::duration since, std::chrono::system_clock::duration age) {
    return AfterTlsFailure{now - since, now - age};
}
Situation failed_unset(std::chrono::system_clock::duration age) { return AfterTlsFailure{TimePoint{}, now - age}; }

struct Row {
    const char* name;
    PolicyInputs in;
    Situation situation;
    Level level;
    Action action;
    bool plaintext = false;
    std::vector<std::string> reasons = {};  // each must be a substring of some reason
    bool only_tls_hosts = false;
    bool probe_needed = false;
    std::string status = {};
    std::vector<std::string> mx_patterns = {};
};

// clang-format off: one scenario per row reads better than reflowed braces
const Row kRows[] = {
    // ---- docs/design.md sender modes: "domain meets >= encrypt" ----
    {"tls-or-escrow, capable",
     In().mode(Mode::tls_or_escrow),
     before(Cap::tls_capable),
     Level::encrypt,
     Action::deliver,
     false,
     {"every MX host does TLS: forced TLS", "sender mode tls-or-escrow: never plaintext"}},
    {"tls-only, capable",
     In().mode(Mode::tls_only),
     before(Cap::tls_capable),
     Level::encrypt,
     Action::deliver,
     false,
     {"forced TLS", "sender mode tls-only"}},
    {"escrow-always, capable",
     In().mode(Mode::escrow_always),
     before(Cap::tls_capable),
     Level::encrypt,
     Action::escrow,
     false,
     {"sender mode escrow-always: every message goes to escrow"}},
    {"opportunistic, capable: the ratchet protects everyone",
     In().mode(Mode::opportunistic),
     before(Cap::tls_capable),
     Level::encrypt,
     Action::deliver,
     false,
     {"the ratchet protects everyone"}},
    {"opportunistic, learned verify",
     In().mode(Mode::opportunistic).learned(Level::verify),
     before(Cap::tls_capable),
     Level::verify,
     Action::deliver,
     false,
     {"learned: verify (confirmed 2026-11-20, 3 MX hosts)"}},

    // ---- "domain cannot do TLS" ----
    {"tls-or-escrow, no TLS",
     In().mode(Mode::tls_or_escrow),
     before(Cap::no_tls),
     Level::encrypt,
     Action::escrow,
     false,
     {"no MX host does TLS", "do not support TLS: escrow"}},
    {"tls-only, no TLS: bounce with a clear DSN",
     In().mode(Mode::tls_only),
     before(Cap::no_tls),
     Level::encrypt,
     Action::bounce,
     false,
     {"do not support TLS and the sender's mode tls-only does not allow plaintext"},
     false,
     false,
     "5.7.4"},
    {"escrow-always, no TLS", In().mode(Mode::escrow_always), before(Cap::no_tls), Level::may, Action::escrow},
    {"opportunistic, no TLS: plaintext allowed",
     In().mode(Mode::opportunistic),
     before(Cap::no_tls),
     Level::may,
     Action::deliver,
     true,
     {"no MX host does TLS", "plaintext allowed"}},

    // ---- "TLS fails to a domain known to support it" ----
    {"tls-or-escrow, failing 10m: defer",
     In().learned(Level::encrypt),
     failed(10min, 15min),
     Level::encrypt,
     Action::defer,
     false,
     {"TLS failed to a domain known to support it", "escrow from 2026-11-28T12:50:00Z"}},
    {"tls-or-escrow, failing escrow_after: escrow",
     In().learned(Level::encrypt),
     failed(1h, 2h),
     Level::encrypt,
     Action::escrow,
     false,
     {"escrow_after 1h"}},
    {"tls-or-escrow, no first failure: counts from received", In().learned(Level::encrypt), failed_unset(2h),
     Level::encrypt, Action::escrow},
    {"tls-or-escrow, queue lifetime before escrow_after: escrow, never bounce", In().learned(Level::encrypt),
     failed(10min, 24h * 5), Level::encrypt, Action::escrow},
    {"tls-only, failing: defer",
     In().mode(Mode::tls_only).learned(Level::verify),
     failed(2h, 24h),
     Level::verify,
     Action::defer,
     false,
     {"bounce from 2026-12-02T12:00:00Z"}},
    {"tls-only, queue lifetime: bounce",
     In().mode(Mode::tls_only).learned(Level::verify),
     failed(3h, 24h * 5),
     Level::verify,
     Action::bounce,
     false,
     {"queue lifetime (5d)"},
     false,
     false,
     "5.7.5"},
    {"escrow-always, failing", In().mode(Mode::escrow_always).learned(Level::encrypt), failed(1min, 1min),
     Level::encrypt, Action::escrow},
    {"opportunistic, failing: defer, never plaintext", In().mode(Mode::opportunistic).learned(Level::encrypt),
     failed(5h, 5h), Level::encrypt, Action::defer},
    {"opportunistic, failing at queue lifetime: bounce",
     In().mode(Mode::opportunistic).learned(Level::encrypt),
     failed(5h, 24h * 6),
     Level::encrypt,
     Action::bounce,
     false,
     {},
     false,
     false,
     "5.7.5"},

    // ---- first contact: capability unknown ----
    {"tls-or-escrow, unknown: probe first",
     In(),
     before(Cap::unknown),
     Level::encrypt,
     Action::defer,
     false,
     {"not probed", "probe every MX host of example.org"},
     false,
     true},
    {"tls-only, unknown: probe first",
     In().mode(Mode::tls_only),
     before(Cap::unknown),
     Level::encrypt,
     Action::defer,
     false,
     {},
     false,
     true},
    {"opportunistic, unknown: no probe, may", In().mode(Mode::opportunistic), before(Cap::unknown), Level::may,
     Action::deliver, true},
    {"escrow-always, unknown", In().mode(Mode::escrow_always), before(Cap::unknown), Level::may, Action::escrow},
    {"tls-only, unknown but learned: no probe needed", In().mode(Mode::tls_only).learned(Level::verify),
     before(Cap::unknown), Level::verify, Action::deliver},

    // ---- each source ----
    {"static verify",
     In().mode(Mode::opportunistic).stat(Level::verify),
     before(Cap::unknown),
     Level::verify,
     Action::deliver,
     false,
     {"static policy: verify"}},
    {"static none changes nothing",
     In().mode(Mode::opportunistic).stat(Level::none),
     before(Cap::no_tls),
     Level::may,
     Action::deliver,
     true,
     {"static policy: none"}},
    {"DANE",
     In().mode(Mode::opportunistic).dane(),
     before(Cap::tls_capable),
     Level::dane,
     Action::deliver,
     false,
     {"DANE: secure TLSA"}},
    {"MTA-STS enforce",
     In().mode(Mode::opportunistic).sts(StsMode::enforce),
     before(Cap::unknown),
     Level::verify,
     Action::deliver,
     false,
     {"MTA-STS enforce: verify, mx mx1.example.org, *.mail.example.org"},
     false,
     false,
     "",
     {"mx1.example.org", "*.mail.example.org"}},
    {"MTA-STS testing only reports",
     In().mode(Mode::opportunistic).sts(StsMode::testing),
     before(Cap::no_tls),
     Level::may,
     Action::deliver,
     true,
     {"MTA-STS testing"}},
    {"MTA-STS none", In().mode(Mode::opportunistic).sts(StsMode::none), before(Cap::no_tls), Level::may,
     Action::deliver, true},
    {"preload",
     In().mode(Mode::opportunistic).preload(Level::encrypt),
     before(Cap::unknown),
     Level::encrypt,
     Action::deliver,
     false,
     {"preload list: encrypt"}},
    {"REQUIRETLS, authenticated MX",
     In().mode(Mode::opportunistic).requiretls(),
     before(Cap::tls_capable),
     Level::verify,
     Action::deliver,
     false,
     {"REQUIRETLS (RFC 8689): verify"}},
    {"REQUIRETLS, unauthenticated MX, opportunistic: bounce",
     In().mode(Mode::opportunistic).requiretls(false),
     before(Cap::tls_capable),
     Level::verify,
     Action::bounce,
     false,
     {"neither DNSSEC-secure nor"},
     false,
     false,
     "5.7.30"},
    {"REQUIRETLS, unauthenticated MX, tls-only: bounce",
     In().mode(Mode::tls_only).requiretls(false),
     before(Cap::tls_capable),
     Level::verify,
     Action::bounce,
     false,
     {},
     false,
     false,
     "5.7.30"},
    {"REQUIRETLS, unauthenticated MX, tls-or-escrow: escrow", In().requiretls(false), before(Cap::tls_capable),
     Level::verify, Action::escrow},
    {"REQUIRETLS, unauthenticated MX after a failure",
     In().mode(Mode::tls_only).requiretls(false),
     failed(1h, 1h),
     Level::verify,
     Action::bounce,
     false,
     {},
     false,
     false,
     "5.7.30"},
    {"REQUIRETLS with DANE: MX authenticated by DNSSEC", In().mode(Mode::tls_only).dane().requiretls(false),
     before(Cap::tls_capable), Level::dane, Action::deliver},
    {"REQUIRETLS with MTA-STS enforce",
     In().mode(Mode::tls_only).sts(StsMode::enforce).requiretls(false),
     before(Cap::tls_capable),
     Level::verify,
     Action::deliver,
     false,
     {},
     false,
     false,
     "",
     {"mx1.example.org", "*.mail.example.org"}},
    {"REQUIRETLS to a domain without TLS: attempt verify, never plaintext", In().mode(Mode::opportunistic).requiretls(),
     before(Cap::no_tls), Level::verify, Action::deliver},
    {"the strictest source wins",
     In().mode(Mode::opportunistic).stat(Level::encrypt).learned(Level::verify).preload(Level::may),
     before(Cap::tls_capable),
     Level::verify,
     Action::deliver,
     false,
     {"static policy: encrypt", "learned: verify", "preload list: may"}},
    {"every source at once",
     In().mode(Mode::tls_only)
         .stat(Level::encrypt)
         .learned(Level::verify, 1)
         .dane()
         .sts(StsMode::enforce)
         .preload(Level::verify)
         .requiretls(),
     before(Cap::tls_capable),
     Level::dane,
     Action::deliver,
     false,
     {"static policy: encrypt", "learned: verify (confirmed 2026-11-20, 1 MX host)", "DANE", "MTA-STS enforce",
      "preload list: verify", "REQUIRETLS", "sender mode tls-only"},
     false,
     false,
     "",
     {"mx1.example.org", "*.mail.example.org"}},

    // ---- admin override ----
    {"override lowers the learned level",
     In().mode(Mode::opportunistic).learned(Level::verify).override_to(Level::may),
     before(Cap::tls_capable),
     Level::may,
     Action::deliver,
     true,
     {"admin override to may until 2026-11-30T12:00:00Z: partner fixing TLS (set by alice); lowers "
      "verify"}},
    {"override without expiry",
     In().mode(Mode::opportunistic).learned(Level::verify).override_to(Level::encrypt, std::nullopt),
     before(Cap::tls_capable),
     Level::encrypt,
     Action::deliver,
     false,
     {"admin override to encrypt (no expiry)"}},
    {"override may: tls-only still never plaintext",
     In().mode(Mode::tls_only).learned(Level::verify).override_to(Level::may),
     before(Cap::tls_capable),
     Level::encrypt,
     Action::deliver,
     false,
     {"admin override to may", "sender mode tls-only"}},
    {"override may: tls-or-escrow, no TLS -> escrow", In().learned(Level::verify).override_to(Level::may),
     before(Cap::no_tls), Level::encrypt, Action::escrow},
    {"expired override is ignored",
     In().mode(Mode::opportunistic).learned(Level::verify).override_to(Level::may, now - 1min),
     before(Cap::tls_capable),
     Level::verify,
     Action::deliver,
     false,
     {"has expired: ignored"}},
    {"override at its expiry instant is ignored",
     In().mode(Mode::opportunistic).learned(Level::verify).override_to(Level::may, now), before(Cap::tls_capable),
     Level::verify, Action::deliver},
    {"override may raise",
     In().mode(Mode::opportunistic).stat(Level::may).override_to(Level::verify),
     before(Cap::unknown),
     Level::verify,
     Action::deliver,
     false,
     {"admin override to verify"}},
    {"override does not lower REQUIRETLS",
     In().mode(Mode::opportunistic).learned(Level::dane).requiretls().override_to(Level::may),
     before(Cap::tls_capable),
     Level::verify,
     Action::deliver,
     false,
     {"lowers dane", "REQUIRETLS"}},
    {"override lifts DANE and MTA-STS (no mx filter)",
     In().mode(Mode::opportunistic).dane().sts(StsMode::enforce).override_to(Level::encrypt),
     before(Cap::tls_capable),
     Level::encrypt,
     Action::deliver,
     false,
     {"lowers dane"}},
    {"override may after a failure: opportunistic may go plaintext",
     In().mode(Mode::opportunistic).learned(Level::encrypt).override_to(Level::may), failed(1h, 1h), Level::may,
     Action::deliver, true},
    {"override may after a failure: tls-or-escrow still defers", In().learned(Level::encrypt).override_to(Level::may),
     failed(10min, 1h), Level::encrypt, Action::defer},

    // ---- TLS-Required: No (RFC 8689 section 5) ----
    {"TLS-Required: No lowers to may",
     In().mode(Mode::tls_only).learned(Level::verify).tls_required_no(),
     before(Cap::no_tls),
     Level::may,
     Action::deliver,
     true,
     {"TLS-Required: No (RFC 8689 section 5; account bob was given --allow-tls-optional): lowered to may"}},
    {"TLS-Required: No lowers DANE and MTA-STS",
     In().mode(Mode::opportunistic).dane().sts(StsMode::enforce).tls_required_no(), before(Cap::tls_capable),
     Level::may, Action::deliver, true},
    {"TLS-Required: No is ignored with REQUIRETLS",
     In().mode(Mode::opportunistic).requiretls().tls_required_no(),
     before(Cap::no_tls),
     Level::verify,
     Action::deliver,
     false,
     {"TLS-Required: No ignored"}},
    {"TLS-Required: No, escrow-always still escrows", In().mode(Mode::escrow_always).tls_required_no(),
     before(Cap::no_tls), Level::may, Action::escrow},
    {"TLS-Required: No after a TLS failure", In().learned(Level::verify).tls_required_no(), failed(1h, 1h), Level::may,
     Action::deliver, true},
    // Issue 11 item 1: only a sender given the right lowers anything, and never below the admin.
    {"TLS-Required: No without the right is ignored",
     In().mode(Mode::tls_only).learned(Level::verify).tls_required_no(false),
     before(Cap::tls_capable),
     Level::verify,
     Action::deliver,
     false,
     {"TLS-Required: No ignored: account eve may not use it"}},
    {"TLS-Required: No without the right: tls-or-escrow still escrows",
     In().tls_required_no(false),
     before(Cap::no_tls),
     Level::encrypt,
     Action::escrow,
     false,
     {"TLS-Required: No ignored"}},
    {"TLS-Required: No without the right after a failure: never plaintext",
     In().mode(Mode::tls_only).learned(Level::encrypt).tls_required_no(false), failed(1h, 1h), Level::encrypt,
     Action::defer},
    {"TLS-Required: No never below the static floor",
     In().mode(Mode::opportunistic).stat(Level::verify).learned(Level::dane).tls_required_no(),
     before(Cap::tls_capable),
     Level::verify,
     Action::deliver,
     false,
     {"lowered only to the admin's floor verify"}},
    {"TLS-Required: No never below an admin override",
     In().mode(Mode::tls_only).override_to(Level::encrypt).sts(StsMode::enforce).tls_required_no(),
     before(Cap::no_tls),
     Level::encrypt,
     Action::deliver,
     false,
     {"lowered only to the admin's floor encrypt"}},
    {"TLS-Required: No, an override lowering the static floor lowers to may",
     In().mode(Mode::tls_only).stat(Level::verify).override_to(Level::may).tls_required_no(),
     before(Cap::no_tls),
     Level::may,
     Action::deliver,
     true,
     {"lowered to may"}},

    // ---- partial TLS (issue 4, item 6) ----
    {"tls-or-escrow, partial: TLS hosts only",
     In(),
     before(Cap::partial_tls),
     Level::encrypt,
     Action::deliver,
     false,
     {"only some MX hosts do TLS", "only the MX hosts that do TLS are used"},
     true},
    {"tls-only, partial: TLS hosts only",
     In().mode(Mode::tls_only),
     before(Cap::partial_tls),
     Level::encrypt,
     Action::deliver,
     false,
     {},
     true},
    {"opportunistic, partial: every host, may",
     In().mode(Mode::opportunistic),
     before(Cap::partial_tls),
     Level::may,
     Action::deliver,
     true,
     {},
     false},
    {"escrow-always, partial", In().mode(Mode::escrow_always), before(Cap::partial_tls), Level::may, Action::escrow},
    {"opportunistic, partial, static verify: TLS hosts only",
     In().mode(Mode::opportunistic).stat(Level::verify),
     before(Cap::partial_tls),
     Level::verify,
     Action::deliver,
     false,
     {},
     true},

    // ---- downgrade: learned TLS, hosts now without it ----
    {"learned encrypt, no TLS now: attempt at encrypt (possible attack)",
     In().learned(Level::encrypt),
     before(Cap::no_tls),
     Level::encrypt,
     Action::deliver,
     false,
     {"possible downgrade attack"}},
    {"learned encrypt, no TLS now, opportunistic: never plaintext",
     In().mode(Mode::opportunistic).learned(Level::encrypt),
     before(Cap::no_tls),
     Level::encrypt,
     Action::deliver,
     false,
     {"possible downgrade attack"}},

    // ---- [[delivery.routes]]: the floor joins the sources; the domain's MX facts do not apply ----
    {"route floor verify raises an opportunistic sender's may",
     In().mode(Mode::opportunistic).route(Level::verify),
     before(Cap::no_tls),
     Level::verify,
     Action::deliver,
     false,
     {"route smarthost: TLS at least verify", "TLS required to the next hop of route smarthost"}},
    {"route without floor, opportunistic, unknown MX: plaintext allowed, no probe",
     In().mode(Mode::opportunistic).route(std::nullopt),
     before(Cap::unknown),
     Level::may,
     Action::deliver,
     true,
     {"route smarthost: its next hop instead of the MX hosts"}},
    {"route, tls-or-escrow, domain's MX without TLS: TLS to the next hop, not escrow",
     In().mode(Mode::tls_or_escrow).route(std::nullopt),
     before(Cap::no_tls),
     Level::encrypt,
     Action::deliver,
     false,
     {"never plaintext", "TLS required to the next hop of route smarthost"}},
    {"route floor encrypt never lowers a learned dane",
     In().learned(Level::dane).route(Level::encrypt),
     before(Cap::tls_capable),
     Level::dane,
     Action::deliver,
     false,
     {"route smarthost: its next hop instead of the MX hosts"}},
    {"route: MTA-STS enforce keeps verify, its mx patterns are not applied",
     In().sts(StsMode::enforce).route(Level::encrypt),
     before(Cap::tls_capable),
     Level::verify,
     Action::deliver,
     false,
     {"MTA-STS mx patterns do not apply to route smarthost"}},
    {"route floor verify: a TLS failure defers, never plaintext",
     In().mode(Mode::opportunistic).route(Level::verify),
     failed(10min, 10min),
     Level::verify,
     Action::defer,
     false,
     {"TLS failed: retry"}},
};
// clang-format on

void PrintTo(const Row& r, std::ostream* os) { *os << r.name; }

class DecideTable : public ::testing::TestWithParam<Row> {};

TEST_P(DecideTable, Row) {
    const Row& r = GetParam();
    const Decision d = decide(r.in, r.situation, now);
    std::string all;
    for (const auto& s : d.reasons) all += "\n  " + s;
    SCOPED_TRACE(std::string(r.name) + "; reasons:" + all + "\n  summary: " + d.summary);
    EXPECT_EQ(tls::to_string(d.level), tls::to_string(r.level));
    EXPECT_EQ(to_string(d.action), to_string(r.action));
    EXPECT_EQ(d.plaintext_allowed, r.plaintext);
    EXPECT_EQ(d.only_tls_hosts, r.only_tls_hosts);
    EXPECT_EQ(d.probe_needed, r.probe_needed);
    EXPECT_EQ(d.status, r.status);
    EXPECT_EQ(d.mx_patterns, r.mx_patterns);
    for (const auto& want : r.reasons) EXPECT_NE(all.find(want), std::string::npos) << "missing reason: " << want;
    EXPECT_FALSE(d.summary.empty());
    EXPECT_EQ(d.reasons.back(), d.summary.substr(d.summary.find(": ") + 2));
}

std::string row_name(const ::testing::TestParamInfo<Row>& info) {
    std::string n = std::to_string(info.index) + "_";
    for (const char* p = info.param.name; *p; ++p) n += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
    return n;
}

INSTANTIATE_TEST_SUITE_P(Scenarios, DecideTable, ::testing::ValuesIn(kRows), row_name);

// Every combination of sources, sender modes and situations, against the invariants.
enum class Rtls { no, authenticated, unauthenticated };
enum class Ovr { none, active_may, active_verify, expired_none };
// TLS-Required: No: absent, from a sender without the right, from one with it.
enum class Hdr { none, refused, allowed };

struct Combo {
    Mode mode;
    std::size_t situation;
    std::optional<Level> stat, learned;
    bool dane;
    std::optional<StsMode> sts;
    std::optional<Level> preload;
    Rtls rtls;
    Hdr header;
    Ovr ovr;
};

std::vector<Combo> every_combination() {
    std::vector<Combo> out;
    for (auto mode : {Mode::tls_or_escrow, Mode::tls_only, Mode::escrow_always, Mode::opportunistic})
        for (std::size_t sit = 0; sit < 7; ++sit)
            for (auto st : {std::optional<Level>{}, std::optional<Level>{Level::verify}})
                for (auto le : {std::optional<Level>{}, std::optional<Level>{Level::encrypt},
                                std::optional<Level>{Level::verify}})
                    for (bool dane : {false, true})
                        for (auto sts : {std::optional<StsMode>{}, std::optional<StsMode>{StsMode::testing},
                                         std::optional<StsMode>{StsMode::enforce}})
                            for (auto pre : {std::optional<Level>{}, std::optional<Level>{Level::encrypt}})
                                for (auto rtls : {Rtls::no, Rtls::authenticated, Rtls::unauthenticated})
                                    for (auto header : {Hdr::none, Hdr::refused, Hdr::allowed})
                                        for (auto ovr :
                                             {Ovr::none, Ovr::active_may, Ovr::active_verify, Ovr::expired_none})
                                            out.push_back({mode, sit, st, le, dane, sts, pre, rtls, header, ovr});
    return out;
}

TEST(DecideCombinations, InvariantsHoldForEveryCombination) {
    const Situation situations[] = {before(Cap::tls_capable), before(Cap::partial_tls), before(Cap::no_tls),
                                    before(Cap::unknown),     failed(1min, 1min),       failed(2h, 2h),
                                    failed(1h, 24h * 7)};
    const auto combos = every_combination();
    EXPECT_EQ(combos.size(), 4u * 7 * 2 * 3 * 2 * 3 * 2 * 3 * 3 * 4);
    int reported = 0;
    for (std::size_t n = 0; n < combos.size() && reported < 5; ++n) {
        const Combo& c = combos[n];
        In in;
        in.mode(c.mode);
        if (c.stat) in.stat(*c.stat);
        if (c.learned) in.learned(*c.learned, 1);
        if (c.dane) in.dane();
        if (c.sts) in.sts(*c.sts);
        if (c.preload) in.preload(*c.preload);
        if (c.rtls != Rtls::no) in.requiretls(c.rtls == Rtls::authenticated);
        if (c.header != Hdr::none) in.tls_required_no(c.header == Hdr::allowed);
        if (c.ovr == Ovr::active_may) in.override_to(Level::may);
        if (c.ovr == Ovr::active_verify) in.override_to(Level::verify);
        if (c.ovr == Ovr::expired_none) in.override_to(Level::none, now - 1s);
        const Situation& sit = situations[c.situation];
        const Decision d = decide(in.v, sit, now);

        std::string all;
        for (const auto& r : d.reasons) all += r + "\n";
        const auto has = [&](const char* text) { return all.find(text) != std::string::npos; };
        std::vector<std::string> broken;
        const auto check = [&](bool ok, const char* what) {
            if (!ok) broken.emplace_back(what);
        };

        const bool requiretls = c.rtls != Rtls::no;
        const bool header_lowers = c.header == Hdr::allowed && !requiretls;
        const bool override_active = c.ovr == Ovr::active_may || c.ovr == Ovr::active_verify;
        const bool never_plain_sender = c.mode == Mode::tls_only || c.mode == Mode::tls_or_escrow;
        const bool after_failure = std::holds_alternative<AfterTlsFailure>(sit);
        const bool opportunistic_may_override = c.mode == Mode::opportunistic && c.ovr == Ovr::active_may;

        // Plaintext only when nothing forbids it, and only to deliver.
        check(!d.plaintext_allowed || (d.action == Action::deliver && d.level <= Level::may),
              "plaintext => deliver at <= may");
        check(!d.plaintext_allowed || !requiretls, "REQUIRETLS => never plaintext");
        check(!d.plaintext_allowed || header_lowers ||
                  (c.mode == Mode::opportunistic && (!override_active || c.ovr == Ovr::active_may)),
              "plaintext only for TLS-Required: No or an opportunistic sender without stricter "
              "sources");
        check(!never_plain_sender || header_lowers || !d.plaintext_allowed,
              "tls-only / tls-or-escrow => never plaintext");
        check(!requiretls || d.level >= Level::verify, "REQUIRETLS => verify");
        check(!after_failure || header_lowers || opportunistic_may_override || d.action != Action::deliver,
              "a TLS failure is never answered by delivering (plaintext)");
        check(!after_failure || header_lowers || opportunistic_may_override || !d.plaintext_allowed,
              "a TLS failure never allows plaintext");

        // The sender modes' actions.
        check(c.mode != Mode::escrow_always || d.action == Action::escrow, "escrow-always => escrow");
        check(c.mode == Mode::tls_or_escrow || c.mode == Mode::escrow_always || d.action != Action::escrow,
              "only tls-or-escrow and escrow-always escrow");
        check(c.mode != Mode::tls_or_escrow || d.action != Action::bounce, "tls-or-escrow never bounces");

        // Without an override or the header, the level is at least every source's.
        if (!override_active && !header_lowers) {
            check(!c.stat || d.level >= *c.stat, "level >= static");
            check(!c.learned || d.level >= *c.learned, "level >= learned");
            check(!c.dane || d.level == Level::dane, "DANE => dane");
            check(c.sts != StsMode::enforce || d.level >= Level::verify, "MTA-STS enforce => verify");
            check(!c.preload || d.level >= *c.preload, "level >= preload");
        }
        check(!(override_active && !header_lowers && !requiretls && c.mode == Mode::opportunistic && !after_failure) ||
                  d.level == (c.ovr == Ovr::active_may ? Level::may : Level::verify),
              "an active override sets the domain's level");
        check(d.mx_patterns.empty() || (c.sts == StsMode::enforce && !override_active && !header_lowers),
              "mx patterns only from MTA-STS enforce in effect");
        check(!d.only_tls_hosts || d.level >= Level::encrypt, "only_tls_hosts => level >= encrypt");
        check(!d.probe_needed || d.action == Action::defer, "probe_needed => defer");
        check(d.action != Action::bounce || !d.status.empty(), "bounce => status");

        // Every source that took part is named.
        check(!c.stat || has("static policy: "), "reason: static");
        check(!c.learned || has("learned: "), "reason: learned");
        check(!c.dane || has("DANE"), "reason: DANE");
        check(c.sts != StsMode::enforce || has("MTA-STS enforce"), "reason: MTA-STS enforce");
        check(c.sts != StsMode::testing || has("MTA-STS testing"), "reason: MTA-STS testing");
        check(!c.preload || has("preload list"), "reason: preload");
        check(!requiretls || has("REQUIRETLS"), "reason: REQUIRETLS");
        check(c.ovr == Ovr::none || has("admin override"), "reason: override");
        check(c.ovr != Ovr::expired_none || has("expired: ignored"), "reason: expired override");
        check(c.header == Hdr::none || has("TLS-Required: No"), "reason: TLS-Required: No");
        check(c.header != Hdr::refused || (has("TLS-Required: No ignored") && d.tls_required_no_ignored),
              "a header without the right is ignored, and said so");
        // The header never goes below the admin's floor: the active override, else static.
        const std::optional<Level> floor = c.ovr == Ovr::active_may      ? std::optional<Level>{Level::may}
                                           : c.ovr == Ovr::active_verify ? std::optional<Level>{Level::verify}
                                                                         : c.stat;
        check(!floor || d.level >= *floor || (c.mode == Mode::escrow_always && d.action == Action::escrow),
              "level >= the admin's floor (override, else static)");
        // A header without the right changes nothing but the reasons.
        if (c.header == Hdr::refused) {
            In plain = in;
            plain.v.tls_required_no = false;
            const Decision p = decide(plain.v, sit, now);
            check(p.level == d.level && p.action == d.action && p.plaintext_allowed == d.plaintext_allowed &&
                      p.mx_patterns == d.mx_patterns,
                  "a refused header decides as no header");
        }
        check(has("sender mode "), "reason: sender mode");
        check(!d.summary.empty(), "summary");

        if (!broken.empty()) {
            ++reported;
            std::string list;
            for (const auto& b : broken) list += "  " + b + "\n";
            ADD_FAILURE() << "combination " << n << " (" << to_string(d.action) << " at " << tls::to_string(d.level)
                          << ") breaks:\n"
                          << list << "reasons:\n"
                          << all;
        }
    }
}

TEST(Decide, StaticLevelFromConfig) {
    config::PolicyConfig cfg;
    cfg.domains["example.org"] = "verify";
    cfg.domains["broken.example"] = "nonsense";
    EXPECT_EQ(static_level(cfg, "example.org"), Level::verify);
    EXPECT_EQ(static_level(cfg, "other.example"), std::nullopt);
    EXPECT_EQ(static_level(cfg, "broken.example"), std::nullopt);
}

TEST(Decide, NamesOfActionsAndCapabilities) {
    EXPECT_EQ(to_string(Action::deliver), "deliver");
    EXPECT_EQ(to_string(Action::escrow), "escrow");
    EXPECT_EQ(to_string(Action::bounce), "bounce");
    EXPECT_EQ(to_string(Action::defer), "defer");
    EXPECT_EQ(to_string(Cap::tls_capable), "tls_capable");
    EXPECT_EQ(to_string(Cap::partial_tls), "partial_tls");
    EXPECT_EQ(to_string(Cap::no_tls), "no_tls");
    EXPECT_EQ(to_string(Cap::unknown), "unknown");
}

}  // namespace
