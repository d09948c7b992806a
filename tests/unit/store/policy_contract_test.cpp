// The learned policy store on every backend (backend.hpp; SQLite in store_test, PostgreSQL in
// store_pg_test): the ratchet (raised by evidence, never lowered, weaker evidence does not even
// confirm), per-MX evidence, forget and overrides with their audit trail, probe history and incidents
// in order, the listing, and a reopened store keeping all of it. What only one backend has (its
// schema's triggers, SQLite file upgrades, several nodes) is in policy_store_test.cpp and
// pg_policy_test.cpp.
#include <gtest/gtest.h>

#include "backend.hpp"
#include "policy_test_util.hpp"

using namespace mailward;
using namespace mailward::store;
using namespace mailward::store::test;
using namespace std::chrono_literals;

namespace {

const TimePoint t0 = kPolicyT0;

}  // namespace

TEST_P(PolicyContract, RatchetRaisesNeverLowers) {
    PolicyStore& ps = p();
    struct Step {
        const char* level;
        TimePoint at;
        bool changed;
        const char* want;
        TimePoint want_confirmed;
        const char* want_report;
    };
    const Step steps[] = {
        {"encrypt", t0, true, "encrypt", t0, "r1"},
        {"may", t0 + 1h, false, "encrypt", t0, "r1"},  // weaker: nothing changes, not even confirmed
        {"none", t0 + 90min, false, "encrypt", t0, "r1"},
        {"verify", t0 + 2h, true, "verify", t0 + 2h, "r4"},  // stricter: raised, report replaced
        {"encrypt", t0 + 3h, false, "verify", t0 + 2h, "r4"},
        {"verify", t0 + 4h, false, "verify", t0 + 4h, "r4"},  // same level: confirmed, report kept
        {"dane", t0 + 5h, true, "dane", t0 + 5h, "r7"},
    };
    int n = 0;
    for (const auto& s : steps) {
        const std::string report = "r" + std::to_string(++n);
        auto r = ps.raise("example.org", s.level, std::vector<MxEvidence>{}, report, s.at);
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(*r, s.changed) << "step " << n;
        auto got = ps.get("example.org");
        ASSERT_TRUE(got && got->has_value());
        EXPECT_EQ((*got)->level, s.want) << "step " << n;
        EXPECT_EQ((*got)->first_seen, t0);
        EXPECT_EQ((*got)->last_confirmed, s.want_confirmed) << "step " << n;
        EXPECT_EQ((*got)->evidence, s.want_report) << "step " << n;
    }
    auto audit = ps.audit("example.org");
    ASSERT_TRUE(audit);
    ASSERT_EQ(audit->size(), 3u);  // learned, raised twice; confirmations are not audited
    EXPECT_EQ((*audit)[0].detail, "learned");
    EXPECT_EQ((*audit)[1].detail, "raised from encrypt");
    EXPECT_EQ((*audit)[2].level, "dane");
    EXPECT_EQ((*audit)[2].who, "ratchet");
}

TEST_P(PolicyContract, FirstSliceRaiseFormStillWorks) {
    PolicyStore& ps = p();
    // The delivery engine of the first slice calls raise(domain, name, rank, report, now).
    auto r = ps.raise("a.example", "verify", 3, "{\"probe\":1}", t0);
    ASSERT_TRUE(r);
    EXPECT_TRUE(*r);
    auto again = ps.raise("a.example", "verify", 3, "{}", t0 + 1h);  // its confirmation
    ASSERT_TRUE(again);
    EXPECT_FALSE(*again);
    auto got = ps.get("a.example");
    ASSERT_TRUE(got && got->has_value());
    EXPECT_EQ((*got)->evidence, "{\"probe\":1}");
    EXPECT_EQ((*got)->last_confirmed, t0 + 1h);
}

TEST_P(PolicyContract, EvidenceIsKeptPerAddressAndReplacedOnConfirm) {
    PolicyStore& ps = p();
    std::vector<MxEvidence> first = {ev("mx2.b.example", "192.0.2.2", "verify"),
                                     ev("mx1.b.example", "192.0.2.1", "verify"),
                                     ev("mx1.b.example", "2001:db8::1", "encrypt", "bb22")};
    ASSERT_TRUE(ps.raise("b.example", "encrypt", first, "{}", t0));
    auto got = ps.get("b.example");
    ASSERT_TRUE(got && got->has_value());
    ASSERT_EQ((*got)->mx.size(), 3u);
    EXPECT_EQ((*got)->mx[0].host, "mx1.b.example");  // ordered by host, address
    EXPECT_EQ((*got)->mx[0].address, "192.0.2.1");
    EXPECT_EQ((*got)->mx[1].address, "2001:db8::1");
    EXPECT_EQ((*got)->mx[1].level, "encrypt");
    EXPECT_EQ((*got)->mx[1].spki_sha256, "bb22");
    EXPECT_TRUE((*got)->mx[1].starttls);
    EXPECT_FALSE((*got)->mx[1].chain_valid);
    EXPECT_EQ((*got)->mx[2].protocol, "TLSv1.3");
    EXPECT_TRUE((*got)->mx[2].chain_valid);
    EXPECT_EQ((*got)->mx[2].seen_at, t0);

    ASSERT_TRUE(ps.confirm("b.example", {}, t0 + 1h));  // no evidence: only last_confirmed
    got = ps.get("b.example");
    ASSERT_TRUE(got && got->has_value());
    EXPECT_EQ((*got)->mx.size(), 3u);
    EXPECT_EQ((*got)->last_confirmed, t0 + 1h);

    ASSERT_TRUE(ps.confirm("b.example", {ev("mx3.b.example", "192.0.2.3", "verify")}, t0 + 2h));
    got = ps.get("b.example");
    ASSERT_TRUE(got && got->has_value());
    ASSERT_EQ((*got)->mx.size(), 1u);
    EXPECT_EQ((*got)->mx[0].host, "mx3.b.example");
    EXPECT_EQ((*got)->level, "encrypt");  // confirm never changes the level

    auto missing = ps.confirm("nothing.example", {}, t0);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error(), common::Errc::not_found);

    auto all = ps.list();
    ASSERT_TRUE(all);
    ASSERT_EQ(all->size(), 1u);
    EXPECT_EQ((*all)[0].mx.size(), 1u);
}

TEST_P(PolicyContract, InvalidInputIsRejectedAndNothingWritten) {
    PolicyStore& ps = p();
    struct Case {
        const char* name;
        std::string domain;
        std::string level;
        std::vector<MxEvidence> mx;
    };
    const Case cases[] = {
        {"unknown level", "c.example", "strong", {}},
        {"upper-case level", "c.example", "VERIFY", {}},
        {"empty domain", "", "verify", {}},
        {"evidence level", "c.example", "verify", {ev("mx.c.example", "192.0.2.9", "great")}},
        {"evidence host", "c.example", "verify", {ev("", "192.0.2.9", "verify")}},
    };
    for (const auto& c : cases) {
        auto r = ps.raise(c.domain, c.level, c.mx, "{}", t0);
        ASSERT_FALSE(r) << c.name;
        EXPECT_EQ(r.error(), common::Errc::invalid_argument) << c.name;
    }
    auto all = ps.list();
    ASSERT_TRUE(all);
    EXPECT_TRUE(all->empty());
    auto probe = ps.record_probe("c.example", "excellent", "{}", t0);
    ASSERT_FALSE(probe);
    EXPECT_EQ(probe.error(), common::Errc::invalid_argument);
    auto inc = ps.add_incident(incident("c.example", t0, "", "no kind"));
    ASSERT_FALSE(inc);
    EXPECT_EQ(inc.error(), common::Errc::invalid_argument);
}

TEST_P(PolicyContract, ForgetDropsTheLevelKeepsHistoryAndIsAudited) {
    PolicyStore& ps = p();
    ASSERT_TRUE(ps.raise("d.example", "verify", {ev("mx.d.example", "192.0.2.4", "verify")}, "{}", t0));
    ASSERT_TRUE(ps.record_probe("d.example", "verify", "{\"hosts\":1}", t0));
    ASSERT_TRUE(ps.add_incident(incident("d.example", t0 + 1h, "starttls_missing", "mx.d.example: no STARTTLS")));
    ASSERT_TRUE(ps.set_override("d.example", "encrypt", "certificate expired", std::nullopt, t0 + 2h, "alice"));

    ASSERT_TRUE(ps.forget("d.example", "bob", t0 + 3h));
    auto got = ps.get("d.example");
    ASSERT_TRUE(got);
    EXPECT_FALSE(got->has_value());

    auto probes = ps.probes("d.example", 10);
    ASSERT_TRUE(probes);
    EXPECT_EQ(probes->size(), 1u);
    auto inc = ps.incidents("d.example");
    ASSERT_TRUE(inc);
    EXPECT_EQ(inc->size(), 1u);
    auto ov = ps.active_override("d.example", t0 + 3h);
    ASSERT_TRUE(ov);
    EXPECT_TRUE(ov->has_value());  // an override is the admin's, not learned: forget keeps it

    auto audit = ps.audit("d.example");
    ASSERT_TRUE(audit);
    ASSERT_EQ(audit->size(), 3u);
    EXPECT_EQ((*audit)[0].action, "raise");
    EXPECT_EQ((*audit)[1].action, "set_override");
    EXPECT_EQ((*audit)[1].who, "alice");
    EXPECT_EQ((*audit)[1].detail, "certificate expired (no expiry)");
    EXPECT_EQ((*audit)[2].action, "forget");
    EXPECT_EQ((*audit)[2].who, "bob");
    EXPECT_EQ((*audit)[2].detail, "was verify");
    EXPECT_EQ((*audit)[2].at, t0 + 3h);

    auto again = ps.forget("d.example", "bob", t0 + 4h);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error(), common::Errc::not_found);

    // Learned again afterwards: a fresh first_seen, and the old evidence went with the old level.
    ASSERT_TRUE(ps.raise("d.example", "encrypt", std::vector<MxEvidence>{}, "{}", t0 + 5h));
    got = ps.get("d.example");
    ASSERT_TRUE(got && got->has_value());
    EXPECT_EQ((*got)->first_seen, t0 + 5h);
    EXPECT_EQ((*got)->level, "encrypt");
    EXPECT_TRUE((*got)->mx.empty());
    ASSERT_TRUE(ps.forget("d.example"));  // the first slice's form
}

TEST_P(PolicyContract, OverridesExpireAndEveryChangeIsAudited) {
    PolicyStore& ps = p();
    const TimePoint until = t0 + 24h;
    ASSERT_TRUE(ps.set_override("e.example", "may", "partner fixing TLS", until, t0, "alice"));
    struct Query {
        TimePoint at;
        bool active;
    };
    for (const auto& q : {Query{t0, true}, Query{until - 1ms, true}, Query{until, false}, Query{until + 1h, false}}) {
        auto got = ps.active_override("e.example", q.at);
        ASSERT_TRUE(got);
        EXPECT_EQ(got->has_value(), q.active) << (q.at - t0).count();
        if (got->has_value()) {
            EXPECT_EQ((*got)->level, "may");
            EXPECT_EQ((*got)->reason, "partner fixing TLS");
            EXPECT_EQ((*got)->expires, until);
            EXPECT_EQ((*got)->set_by, "alice");
            EXPECT_EQ((*got)->set_at, t0);
        }
    }
    auto all = ps.overrides();  // expired ones are still listed
    ASSERT_TRUE(all);
    ASSERT_EQ(all->size(), 1u);
    EXPECT_FALSE((*all)[0].active(until));

    // Replaced by a newer one without expiry.
    ASSERT_TRUE(ps.set_override("e.example", "encrypt", "still broken", std::nullopt, t0 + 2h, "bob"));
    auto got = ps.active_override("e.example", t0 + 1000h);
    ASSERT_TRUE(got && got->has_value());
    EXPECT_EQ((*got)->level, "encrypt");
    EXPECT_FALSE((*got)->expires.has_value());

    ASSERT_TRUE(ps.clear_override("e.example", "carol", t0 + 3h));
    got = ps.active_override("e.example", t0 + 3h);
    ASSERT_TRUE(got);
    EXPECT_FALSE(got->has_value());
    auto cleared = ps.clear_override("e.example", "carol", t0 + 4h);
    ASSERT_FALSE(cleared);
    EXPECT_EQ(cleared.error(), common::Errc::not_found);

    auto audit = ps.audit("e.example");
    ASSERT_TRUE(audit);
    ASSERT_EQ(audit->size(), 3u);
    EXPECT_EQ((*audit)[0].level, "may");
    EXPECT_NE((*audit)[0].detail.find("partner fixing TLS (until "), std::string::npos);
    EXPECT_EQ((*audit)[1].who, "bob");
    EXPECT_EQ((*audit)[2].action, "clear_override");
    EXPECT_EQ((*audit)[2].detail, "was encrypt");

    struct Bad {
        const char* name;
        std::string domain, level, reason;
        std::optional<TimePoint> expires;
    };
    const Bad bad[] = {
        {"empty reason", "e.example", "may", "", std::nullopt},
        {"unknown level", "e.example", "plaintext", "x", std::nullopt},
        {"empty domain", "", "may", "x", std::nullopt},
        {"expires now", "e.example", "may", "x", t0},
        {"expires in the past", "e.example", "may", "x", t0 - 1h},
    };
    for (const auto& b : bad) {
        auto r = ps.set_override(b.domain, b.level, b.reason, b.expires, t0, "alice");
        ASSERT_FALSE(r) << b.name;
        EXPECT_EQ(r.error(), common::Errc::invalid_argument) << b.name;
    }
    auto after = ps.audit("e.example");
    ASSERT_TRUE(after);
    EXPECT_EQ(after->size(), 3u);
}

TEST_P(PolicyContract, IncidentsAreKeptInOrderPerDomain) {
    PolicyStore& ps = p();
    auto a = incident("a.example", t0, "starttls_missing", "mx.a.example: STARTTLS not offered");
    a.host = "mx.a.example";
    a.address = "192.0.2.10";
    a.raw_evidence = "250-XXXXXXXA";
    ASSERT_TRUE(ps.add_incident(a));
    ASSERT_TRUE(ps.add_incident(incident("b.example", t0, "handshake_failed", "x")));
    ASSERT_TRUE(ps.add_incident(incident("a.example", t0 + 1min, "starttls_454", "454 4.7.0 TLS not available")));
    auto inc = ps.incidents("a.example");
    ASSERT_TRUE(inc);
    ASSERT_EQ(inc->size(), 2u);  // b.example's is not a.example's, though they might share MX hosts
    EXPECT_EQ((*inc)[0].kind, "starttls_missing");
    EXPECT_EQ((*inc)[0].host, "mx.a.example");
    EXPECT_EQ((*inc)[0].address, "192.0.2.10");
    EXPECT_EQ((*inc)[0].raw_evidence, "250-XXXXXXXA");
    EXPECT_GT((*inc)[0].id, 0);
    EXPECT_LT((*inc)[0].id, (*inc)[1].id);
    EXPECT_EQ((*inc)[1].kind, "starttls_454");
    EXPECT_EQ((*inc)[1].at, t0 + 1min);
    EXPECT_EQ((*inc)[1].host, "");
}

TEST_P(PolicyContract, ProbeHistoryIsListedNewestFirst) {
    PolicyStore& ps = p();
    ASSERT_TRUE(ps.raise("f.example", "encrypt", std::vector<MxEvidence>{}, "{}", t0));
    auto got = ps.get("f.example");
    ASSERT_TRUE(got && got->has_value());
    EXPECT_FALSE((*got)->last_probe.has_value());

    const char* levels[] = {"encrypt", "may", "verify"};  // a probe may see less: history, not policy
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(ps.record_probe("f.example", levels[i], "{\"n\":" + std::to_string(i) + "}", t0 + i * 1h));
    ASSERT_TRUE(ps.record_probe("g.example", "none", "{}", t0 + 10h));

    auto pr = ps.probes("f.example", 2);
    ASSERT_TRUE(pr);
    ASSERT_EQ(pr->size(), 2u);
    EXPECT_EQ((*pr)[0].level, "verify");
    EXPECT_EQ((*pr)[0].report, "{\"n\":2}");
    EXPECT_EQ((*pr)[0].at, t0 + 2h);
    EXPECT_EQ((*pr)[1].level, "may");
    auto all = ps.probes("f.example", 100);
    ASSERT_TRUE(all);
    EXPECT_EQ(all->size(), 3u);

    got = ps.get("f.example");
    ASSERT_TRUE(got && got->has_value());
    EXPECT_EQ((*got)->last_probe, t0 + 2h);
    EXPECT_EQ((*got)->level, "encrypt");  // recording a probe raises nothing by itself
}

// list() is ordered by domain (byte order, whatever the database's locale) and gives each domain its
// own evidence.
TEST_P(PolicyContract, ListIsOrderedByDomainEachWithItsEvidence) {
    PolicyStore& ps = p();
    ASSERT_TRUE(ps.raise("b.example", "verify", {ev("mx.b.example", "192.0.2.2", "verify")}, "{\"b\":1}", t0));
    ASSERT_TRUE(ps.raise("a.example", "encrypt", std::vector<MxEvidence>{}, "{}", t0 + 1h));
    ASSERT_TRUE(ps.raise("c.example", "dane",
                         {ev("mx2.c.example", "192.0.2.32", "dane"), ev("mx1.c.example", "192.0.2.31", "dane")}, "{}",
                         t0 + 2h));
    ASSERT_TRUE(ps.raise("B.example", "may", std::vector<MxEvidence>{}, "{}", t0 + 3h));  // upper case sorts first
    ASSERT_TRUE(ps.raise("例子.example", "encrypt", {ev("mx.例子.example", "192.0.2.40", "encrypt")}, "{}", t0 + 4h));
    auto all = ps.list();
    ASSERT_TRUE(all);
    struct Want {
        const char* domain;
        const char* level;
        std::vector<std::string> hosts;
    };
    const Want want[] = {
        {"B.example", "may", {}},
        {"a.example", "encrypt", {}},
        {"b.example", "verify", {"mx.b.example"}},
        {"c.example", "dane", {"mx1.c.example", "mx2.c.example"}},
        {"例子.example", "encrypt", {"mx.例子.example"}},  // UTF-8 after ASCII (byte order)
    };
    ASSERT_EQ(all->size(), std::size(want));
    for (std::size_t i = 0; i < all->size(); ++i) {
        const auto& got = (*all)[i];
        EXPECT_EQ(got.domain, want[i].domain) << i;
        EXPECT_EQ(got.level, want[i].level) << i;
        std::vector<std::string> hosts;
        for (const auto& e : got.mx) hosts.push_back(e.host);
        EXPECT_EQ(hosts, want[i].hosts) << i;
    }
    EXPECT_EQ((*all)[2].evidence, "{\"b\":1}");
    EXPECT_EQ((*all)[1].first_seen, t0 + 1h);
}

// What was learned, overridden and recorded survives closing and reopening the store.
TEST_P(PolicyContract, AReopenedStoreKeepsThePolicy) {
    {
        PolicyStore& ps = p();
        ASSERT_TRUE(ps.raise("k.example", "verify", {ev("mx.k.example", "192.0.2.7", "verify")}, "{}", t0));
        ASSERT_TRUE(ps.set_override("k.example", "encrypt", "migrating", std::nullopt, t0, "alice"));
        ASSERT_TRUE(ps.record_probe("k.example", "verify", "{}", t0 + 1min));
        ASSERT_TRUE(ps.add_incident(incident("k.example", t0 + 2min, "starttls_454", "454")));
        st->close();
        st.reset();
    }
    st = backend->open();
    ASSERT_TRUE(st);
    PolicyStore& ps = p();
    auto got = ps.get("k.example");
    ASSERT_TRUE(got && got->has_value());
    EXPECT_EQ((*got)->level, "verify");
    ASSERT_EQ((*got)->mx.size(), 1u);
    EXPECT_EQ((*got)->mx[0].address, "192.0.2.7");
    EXPECT_EQ((*got)->last_probe, t0 + 1min);
    auto ov = ps.active_override("k.example", t0 + 1h);
    ASSERT_TRUE(ov && ov->has_value());
    EXPECT_EQ((*ov)->reason, "migrating");
    auto inc = ps.incidents("k.example");
    ASSERT_TRUE(inc);
    EXPECT_EQ(inc->size(), 1u);
    auto audit = ps.audit("k.example");
    ASSERT_TRUE(audit);
    EXPECT_EQ(audit->size(), 2u);
}
