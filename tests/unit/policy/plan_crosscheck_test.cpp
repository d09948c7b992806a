// The same recorded facts give the same plan on both paths: the delivery engine's (what it reads
// from the store with load_destination(), its MTA-STS lookup, the preload list, the route ->
// engine_facts()) and `policy simulate`'s (the store's rows as it reads them, the MTA-STS cache
// file's entry, the preload file -> simulation_facts()). One fixture per row (learned with and
// without evidence, overrides active and expired, MTA-STS enforce and testing, preload live and
// expired, REQUIRETLS, TLS-Required: No), every sender mode; a real SQLite store in a temp dir.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <tuple>

#include "config/config.hpp"
#include "policy/facts.hpp"
#include "policy/mta_sts_fetch.hpp"
#include "policy/plan.hpp"
#include "policy/preload.hpp"
#include "store/store.hpp"
#include "temp_dir.hpp"

using namespace mailward;
using namespace mailward::policy;
using namespace std::chrono_literals;
using tls::Level;
using Mode = config::SenderMode;

namespace {

const TimePoint now = std::chrono::sys_days{std::chrono::year{2026} / 11 / 28} + 12h;

enum class Learned { none, with_evidence, without_evidence, weak_with_evidence, weak_without_evidence };
enum class Ovr { none, active_may, active_verify, expired };
enum class Sts { none, enforce, testing };
enum class Pre { none, verify, expired };
enum class Hdr { none, allowed, refused };

struct Fixture {
    const char* name;
    Learned learned = Learned::none;
    Ovr ovr = Ovr::none;
    Sts sts = Sts::none;
    Pre pre = Pre::none;
    bool requiretls = false;
    Hdr header = Hdr::none;
    bool mx_secure = false;
    const char* static_level = nullptr;
};

std::vector<Fixture> fixtures() {
    return {
        {"nothing known"},
        {"learned with evidence", Learned::with_evidence},
        {"learned without evidence", Learned::without_evidence},
        {"learned below encrypt", Learned::weak_with_evidence},
        // Where `policy simulate` used to disagree with the engine (it called this not
        // TLS-capable).
        {"learned below encrypt without evidence", Learned::weak_without_evidence},
        {"override may", Learned::with_evidence, Ovr::active_may},
        {"override verify", Learned::without_evidence, Ovr::active_verify},
        {"expired override", Learned::with_evidence, Ovr::expired},
        {"MTA-STS enforce", Learned::with_evidence, Ovr::none, Sts::enforce},
        {"MTA-STS testing", Learned::none, Ovr::none, Sts::testing},
        {"preload verify", Learned::none, Ovr::none, Sts::none, Pre::verify},
        {"expired preload", Learned::with_evidence, Ovr::none, Sts::none, Pre::expired},
        {"REQUIRETLS, insecure MX", Learned::with_evidence, Ovr::none, Sts::none, Pre::none, true},
        {"REQUIRETLS, secure MX", Learned::with_evidence, Ovr::none, Sts::none, Pre::none, true, Hdr::none, true},
        {"TLS-Required: No allowed", Learned::with_evidence, Ovr::none, Sts::none, Pre::none, false, Hdr::allowed},
        {"TLS-Required: No refused", Learned::with_evidence, Ovr::none, Sts::none, Pre::none, false, Hdr::refused},
        {"TLS-Required: No over a static floor", Learned::with_evidence, Ovr::none, Sts::none, Pre::none, false,
         Hdr::allowed, false, "encrypt"},
        {"everything at once", Learned::with_evidence, Ovr::expired, Sts::enforce, Pre::verify, true, Hdr::allowed,
         true, "verify"},
    };
}

std::string domain_of(std::size_t n) { return "f" + std::to_string(n) + ".example.test"; }

MxEvidence evidence(const std::string& host, const char* level) {
    MxEvidence e;
    e.host = host;
    e.address = "192.0.2.7";
    e.level = level;
    e.starttls = true;
    e.protocol = "TLSv1.3";
    e.spki_sha256 = std::string(64, 'a');
    e.seen_at = now - 48h;
    return e;
}

// Records one fixture: the store's rows (learned level, evidence, override) and the MTA-STS cache
// entry for its domain.
void record(store::PolicyStore& ps, const std::string& domain, const Fixture& f,
            std::map<std::string, CachedMtaStsPolicy>& sts_cache) {
    const std::string mx1 = "mx1." + domain, mx2 = "mx2." + domain;
    switch (f.learned) {
        case Learned::none: break;
        case Learned::with_evidence:
            ASSERT_TRUE(
                ps.raise(domain, "encrypt", {evidence(mx1, "encrypt"), evidence(mx2, "verify")}, "{}", now - 48h));
            break;
        case Learned::without_evidence:
            ASSERT_TRUE(ps.raise(domain, "verify", std::vector<MxEvidence>{}, "{}", now - 48h));
            break;
        case Learned::weak_without_evidence:
            ASSERT_TRUE(ps.raise(domain, "may", std::vector<MxEvidence>{}, "{}", now - 48h));
            break;
        case Learned::weak_with_evidence:
            ASSERT_TRUE(ps.raise(domain, "may", {evidence(mx1, "may"), evidence(mx2, "none")}, "{}", now - 48h));
            break;
    }
    switch (f.ovr) {
        case Ovr::none: break;
        case Ovr::active_may:
            ASSERT_TRUE(ps.set_override(domain, "may", "partner fixing TLS", now + 24h, now - 1h, "ann"));
            break;
        case Ovr::active_verify:
            ASSERT_TRUE(ps.set_override(domain, "verify", "contract", std::nullopt, now - 1h, "ann"));
            break;
        case Ovr::expired: ASSERT_TRUE(ps.set_override(domain, "none", "old", now - 1h, now - 3h, "ann")); break;
    }
    if (f.sts != Sts::none) {
        CachedMtaStsPolicy c;
        c.policy.mode = f.sts == Sts::enforce ? MtaStsPolicy::Mode::enforce : MtaStsPolicy::Mode::testing;
        c.policy.mx = {mx2};
        c.policy.max_age = 86400s;
        c.id = "20261128";
        c.fetched_at = now - 1h;
        c.expires = now + 23h;
        sts_cache[domain] = c;
    }
}

config::Config config_for(const std::vector<Fixture>& fs) {
    config::Config cfg;
    for (std::size_t n = 0; n < fs.size(); ++n) {
        if (fs[n].static_level) cfg.policy.domains[domain_of(n)] = fs[n].static_level;
    }
    return cfg;
}

PreloadList preload_for(const std::vector<Fixture>& fs, bool expired) {
    PreloadList list;
    list.source = "preload.json";
    if (expired) list.expires = now - 1h;
    for (std::size_t n = 0; n < fs.size(); ++n) {
        if ((fs[n].pre == Pre::expired) == expired && fs[n].pre != Pre::none)
            list.domains[domain_of(n)] = Level::verify;
    }
    return list;
}

RouteFacts route_for(const std::string& domain, bool mx_secure) {
    RouteFacts r;
    r.mx_secure = mx_secure;
    for (const auto& h : {"mx1." + domain, "mx2." + domain}) {
        MxHostFacts m;
        m.host = h;
        m.addresses_secure = mx_secure;
        m.tlsa.state = mx_secure ? TlsaFact::State::none : TlsaFact::State::not_looked_up;
        r.hosts.push_back(m);
    }
    return r;
}

MessageFacts message_for(const Fixture& f, Mode mode) {
    MessageFacts m;
    m.mode = mode;
    m.requiretls = f.requiretls;
    m.received_at = now - 5min;
    if (f.header != Hdr::none) {
        m.tls_required_no = true;
        m.tls_optional = tls_optional_right("bob", f.header == Hdr::allowed, false);
    }
    return m;
}

std::string plan_text(const Plan& p) {
    std::string s = std::string(tls::to_string(p.decision.level)) + " " + std::string(to_string(p.decision.action)) +
                    " [" + p.decision.status + "] " + std::string(to_string(p.capability)) + " hosts:";
    for (const auto& h : p.hosts) {
        s += " " + h.host + "@" + std::string(tls::to_string(h.level)) + "/" +
             std::to_string(static_cast<int>(h.refused)) + "/" + std::to_string(h.known_spki.size());
    }
    return s;
}

TEST(PlanCrossCheck, EngineAndSimulateGiveTheSamePlan) {
    const auto fs = fixtures();
    test::TempDir dir;
    auto cfg = config_for(fs);
    cfg.server.data_dir = dir.path();
    auto st = store::open(cfg);
    ASSERT_TRUE(st) << st.error().message();
    auto& ps = (*st)->policy();
    std::map<std::string, CachedMtaStsPolicy> sts_cache;
    for (std::size_t n = 0; n < fs.size(); ++n) record(ps, domain_of(n), fs[n], sts_cache);
    const PreloadList live = preload_for(fs, false), expired = preload_for(fs, true);

    // What simulate reads: every override row at once, the learned row per domain.
    std::map<std::string, store::Override> override_rows;
    auto rows = ps.overrides();
    ASSERT_TRUE(rows);
    for (auto& o : *rows) override_rows.emplace(o.domain, o);

    int compared = 0;
    for (std::size_t n = 0; n < fs.size(); ++n) {
        const auto& f = fs[n];
        const std::string domain = domain_of(n);
        const PreloadList* preload = f.pre == Pre::expired ? &expired : &live;
        const auto route = route_for(domain, f.mx_secure);

        // The engine's path: the store read as the engine reads it, its MTA-STS lookup (a fresh
        // cached policy whose TXT id did not change), the preload list it loaded at start.
        EngineReading reading;
        reading.domain = domain;
        auto stored = load_destination(ps, domain, now);
        ASSERT_TRUE(stored) << domain;
        reading.stored = *stored;
        if (auto it = sts_cache.find(domain); it != sts_cache.end()) {
            MtaStsLookup look;
            look.policy = it->second.policy;
            look.source = MtaStsLookup::Source::cache;
            look.id = it->second.id;
            look.expires = it->second.expires;
            look.status =
                "mta-sts: " + std::string(to_string(it->second.policy.mode)) + " (id " + it->second.id + ", cached)";
            reading.mta_sts = to_fact(look);
        }
        reading.preload = preload;
        reading.route = route;
        const auto engine = engine_facts(cfg, reading, now);

        // The simulate path: the rows, the cache file's entry, the preload file.
        SimulationRecord rec;
        rec.domain = domain;
        auto row = ps.get(domain);
        ASSERT_TRUE(row);
        rec.learned = *row;
        if (auto it = override_rows.find(domain); it != override_rows.end()) rec.override = it->second;
        if (auto it = sts_cache.find(domain); it != sts_cache.end()) rec.mta_sts = cached_fact(it->second, now);
        rec.preload = preload;
        rec.route = route;
        auto sim = simulation_facts(cfg, rec, now);
        ASSERT_TRUE(sim) << domain;

        for (auto mode : {Mode::tls_or_escrow, Mode::tls_only, Mode::escrow_always, Mode::opportunistic}) {
            const auto m = message_for(f, mode);
            const auto a = plan(engine, m, now);
            const auto b = plan(*sim, m, now);
            const std::string where = std::string(f.name) + " / " + std::string(config::to_string(mode));
            EXPECT_EQ(plan_text(a), plan_text(b)) << where;
            EXPECT_EQ(a.decision.reasons, b.decision.reasons) << where;
            EXPECT_EQ(a.downgrade_floor, b.downgrade_floor) << where;
            auto ma = m;
            ma.first_failure = now - 2h;
            const auto fa = plan_after_tls_failure(engine, ma, now);
            const auto fb = plan_after_tls_failure(*sim, ma, now);
            EXPECT_EQ(std::make_tuple(fa.level, fa.action, fa.status), std::make_tuple(fb.level, fb.action, fb.status))
                << where << ": " << fa.summary << " vs " << fb.summary;
            ++compared;
        }
    }
    EXPECT_EQ(compared, static_cast<int>(fs.size()) * 4);
}

// The fixtures are not all alike: the cross-check above would pass trivially if every fixture
// planned the same. Different records give different plans.
TEST(PlanCrossCheck, FixturesCoverDifferentDecisions) {
    const auto fs = fixtures();
    test::TempDir dir;
    auto cfg = config_for(fs);
    cfg.server.data_dir = dir.path();
    auto st = store::open(cfg);
    ASSERT_TRUE(st);
    auto& ps = (*st)->policy();
    std::map<std::string, CachedMtaStsPolicy> sts_cache;
    for (std::size_t n = 0; n < fs.size(); ++n) record(ps, domain_of(n), fs[n], sts_cache);
    const PreloadList live = preload_for(fs, false);
    std::set<std::string> levels, actions;
    for (std::size_t n = 0; n < fs.size(); ++n) {
        SimulationRecord rec;
        rec.domain = domain_of(n);
        rec.learned = *ps.get(rec.domain);
        rec.preload = &live;
        rec.route = route_for(rec.domain, fs[n].mx_secure);
        if (auto it = sts_cache.find(rec.domain); it != sts_cache.end()) rec.mta_sts = cached_fact(it->second, now);
        auto sim = simulation_facts(cfg, rec, now);
        ASSERT_TRUE(sim);
        for (auto mode : {Mode::tls_or_escrow, Mode::tls_only, Mode::opportunistic}) {
            const auto p = plan(*sim, message_for(fs[n], mode), now);
            levels.insert(std::string(tls::to_string(p.decision.level)));
            actions.insert(std::string(to_string(p.decision.action)));
        }
    }
    EXPECT_GE(levels.size(), 3u);
    EXPECT_EQ(actions, (std::set<std::string>{"bounce", "defer", "deliver", "escrow"}));
}

TEST(PlanCrossCheck, CachedMtaStsFactExpires) {
    CachedMtaStsPolicy c;
    c.policy.mode = MtaStsPolicy::Mode::enforce;
    c.id = "x";
    c.expires = now;
    EXPECT_FALSE(cached_fact(c, now).policy);
    c.expires = now + 1s;
    const auto f = cached_fact(c, now);
    ASSERT_TRUE(f.policy);
    EXPECT_EQ(f.status, "mta-sts: enforce (id x, cached)");
}

TEST(PlanCrossCheck, CorruptLearnedRowIsAnError) {
    config::Config cfg;
    SimulationRecord rec;
    rec.domain = "example.org";
    store::LearnedPolicy row;
    row.domain = rec.domain;
    row.level = "excellent";
    rec.learned = row;
    auto f = simulation_facts(cfg, rec, now);
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error(), common::Errc::corrupt);
}

}  // namespace
