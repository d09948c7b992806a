// The learned policy store in SQLite: the ratchet (raised by evidence, never lowered, weaker
// evidence does not even confirm), per-MX evidence, forget and overrides with their audit trail,
// append-only probe history and incidents (enforced by the schema), and the upgrade of files made
// by older builds (schema v1 and v2) without losing queue or policy data.
#include <gtest/gtest.h>

#include "store/sqlite/db.hpp"
#include "store/sqlite/migrations.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"
#include "store_test_util.hpp"

using namespace mailward;
using namespace mailward::store;
using namespace mailward::store::test;
using namespace std::chrono_literals;

namespace {

const TimePoint t0 = ms(1'800'000'000'000);

MxEvidence ev(std::string host, std::string address, std::string level, std::string spki = "aa11") {
    MxEvidence e;
    e.host = std::move(host);
    e.address = std::move(address);
    e.level = std::move(level);
    e.starttls = e.level != "none" && e.level != "may";
    e.protocol = e.starttls ? "TLSv1.3" : "";
    e.cipher = e.starttls ? "TLS_AES_256_GCM_SHA384" : "";
    e.chain_valid = e.level == "verify" || e.level == "dane";
    e.name_matched = e.chain_valid;
    e.spki_sha256 = e.starttls ? std::move(spki) : "";
    e.dane_matched = e.level == "dane";
    e.seen_at = t0;
    return e;
}

PolicyIncident incident(std::string domain, TimePoint at, std::string kind, std::string detail) {
    PolicyIncident i;
    i.domain = std::move(domain);
    i.at = at;
    i.kind = std::move(kind);
    i.detail = std::move(detail);
    return i;
}

struct Fixture : ::testing::Test {
    TempDir dir;
    std::unique_ptr<Store> st;
    PolicyStore* p = nullptr;
    void SetUp() override {
        auto s = store::open(config_for(dir.path()));
        ASSERT_TRUE(s) << s.error().message();
        st = std::move(*s);
        p = &st->policy();
    }
    std::filesystem::path file() const { return dir.path() / "mailward.db"; }
};

using PolicyStoreTest = Fixture;

TEST_F(PolicyStoreTest, RatchetRaisesNeverLowers) {
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
        auto r = p->raise("example.org", s.level, std::vector<MxEvidence>{}, report, s.at);
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(*r, s.changed) << "step " << n;
        auto got = p->get("example.org");
        ASSERT_TRUE(got && got->has_value());
        EXPECT_EQ((*got)->level, s.want) << "step " << n;
        EXPECT_EQ((*got)->first_seen, t0);
        EXPECT_EQ((*got)->last_confirmed, s.want_confirmed) << "step " << n;
        EXPECT_EQ((*got)->evidence, s.want_report) << "step " << n;
    }
    auto audit = p->audit("example.org");
    ASSERT_TRUE(audit);
    ASSERT_EQ(audit->size(), 3u);  // learned, raised twice; confirmations are not audited
    EXPECT_EQ((*audit)[0].detail, "learned");
    EXPECT_EQ((*audit)[1].detail, "raised from encrypt");
    EXPECT_EQ((*audit)[2].level, "dane");
    EXPECT_EQ((*audit)[2].who, "ratchet");
}

TEST_F(PolicyStoreTest, FirstSliceRaiseFormStillWorks) {
    // The delivery engine of the first slice calls raise(domain, name, rank, report, now).
    auto r = p->raise("a.example", "verify", 3, "{\"probe\":1}", t0);
    ASSERT_TRUE(r);
    EXPECT_TRUE(*r);
    auto again = p->raise("a.example", "verify", 3, "{}", t0 + 1h);  // its confirmation
    ASSERT_TRUE(again);
    EXPECT_FALSE(*again);
    auto got = p->get("a.example");
    ASSERT_TRUE(got && got->has_value());
    EXPECT_EQ((*got)->evidence, "{\"probe\":1}");
    EXPECT_EQ((*got)->last_confirmed, t0 + 1h);
}

TEST_F(PolicyStoreTest, EvidenceIsKeptPerAddressAndReplacedOnConfirm) {
    std::vector<MxEvidence> first = {ev("mx2.b.example", "192.0.2.2", "verify"),
                                     ev("mx1.b.example", "192.0.2.1", "verify"),
                                     ev("mx1.b.example", "2001:db8::1", "encrypt", "bb22")};
    ASSERT_TRUE(p->raise("b.example", "encrypt", first, "{}", t0));
    auto got = p->get("b.example");
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

    ASSERT_TRUE(p->confirm("b.example", {}, t0 + 1h));  // no evidence: only last_confirmed
    got = p->get("b.example");
    ASSERT_TRUE(got && got->has_value());
    EXPECT_EQ((*got)->mx.size(), 3u);
    EXPECT_EQ((*got)->last_confirmed, t0 + 1h);

    ASSERT_TRUE(p->confirm("b.example", {ev("mx3.b.example", "192.0.2.3", "verify")}, t0 + 2h));
    got = p->get("b.example");
    ASSERT_TRUE(got && got->has_value());
    ASSERT_EQ((*got)->mx.size(), 1u);
    EXPECT_EQ((*got)->mx[0].host, "mx3.b.example");
    EXPECT_EQ((*got)->level, "encrypt");  // confirm never changes the level

    auto missing = p->confirm("nothing.example", {}, t0);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error(), common::Errc::not_found);

    auto all = p->list();
    ASSERT_TRUE(all);
    ASSERT_EQ(all->size(), 1u);
    EXPECT_EQ((*all)[0].mx.size(), 1u);
}

TEST_F(PolicyStoreTest, InvalidInputIsRejectedAndNothingWritten) {
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
        auto r = p->raise(c.domain, c.level, c.mx, "{}", t0);
        ASSERT_FALSE(r) << c.name;
        EXPECT_EQ(r.error(), common::Errc::invalid_argument) << c.name;
    }
    auto all = p->list();
    ASSERT_TRUE(all);
    EXPECT_TRUE(all->empty());
    auto probe = p->record_probe("c.example", "excellent", "{}", t0);
    ASSERT_FALSE(probe);
    EXPECT_EQ(probe.error(), common::Errc::invalid_argument);
    auto inc = p->add_incident(incident("c.example", t0, "", "no kind"));
    ASSERT_FALSE(inc);
    EXPECT_EQ(inc.error(), common::Errc::invalid_argument);
}

TEST_F(PolicyStoreTest, ForgetDropsTheLevelKeepsHistoryAndIsAudited) {
    ASSERT_TRUE(p->raise("d.example", "verify", {ev("mx.d.example", "192.0.2.4", "verify")}, "{}", t0));
    ASSERT_TRUE(p->record_probe("d.example", "verify", "{\"hosts\":1}", t0));
    ASSERT_TRUE(p->add_incident(incident("d.example", t0 + 1h, "starttls_missing", "mx.d.example: no STARTTLS")));
    ASSERT_TRUE(p->set_override("d.example", "encrypt", "certificate expired", std::nullopt, t0 + 2h, "alice"));

    ASSERT_TRUE(p->forget("d.example", "bob", t0 + 3h));
    auto got = p->get("d.example");
    ASSERT_TRUE(got);
    EXPECT_FALSE(got->has_value());
    RawDb raw(file());
    EXPECT_EQ(raw.integer("SELECT count(*) FROM policy_evidence WHERE domain = 'd.example'"), 0);

    auto probes = p->probes("d.example", 10);
    ASSERT_TRUE(probes);
    EXPECT_EQ(probes->size(), 1u);
    auto inc = p->incidents("d.example");
    ASSERT_TRUE(inc);
    EXPECT_EQ(inc->size(), 1u);
    auto ov = p->active_override("d.example", t0 + 3h);
    ASSERT_TRUE(ov);
    EXPECT_TRUE(ov->has_value());  // an override is the admin's, not learned: forget keeps it

    auto audit = p->audit("d.example");
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

    auto again = p->forget("d.example", "bob", t0 + 4h);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error(), common::Errc::not_found);

    // Learned again afterwards: a fresh first_seen.
    ASSERT_TRUE(p->raise("d.example", "encrypt", std::vector<MxEvidence>{}, "{}", t0 + 5h));
    got = p->get("d.example");
    ASSERT_TRUE(got && got->has_value());
    EXPECT_EQ((*got)->first_seen, t0 + 5h);
    ASSERT_TRUE(p->forget("d.example"));  // the first slice's form
}

TEST_F(PolicyStoreTest, OverridesExpireAndEveryChangeIsAudited) {
    const TimePoint until = t0 + 24h;
    ASSERT_TRUE(p->set_override("e.example", "may", "partner fixing TLS", until, t0, "alice"));
    struct Query {
        TimePoint at;
        bool active;
    };
    for (const auto& q : {Query{t0, true}, Query{until - 1ms, true}, Query{until, false}, Query{until + 1h, false}}) {
        auto got = p->active_override("e.example", q.at);
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
    auto all = p->overrides();  // expired ones are still listed
    ASSERT_TRUE(all);
    ASSERT_EQ(all->size(), 1u);
    EXPECT_FALSE((*all)[0].active(until));

    // Replaced by a newer one without expiry.
    ASSERT_TRUE(p->set_override("e.example", "encrypt", "still broken", std::nullopt, t0 + 2h, "bob"));
    auto got = p->active_override("e.example", t0 + 1000h);
    ASSERT_TRUE(got && got->has_value());
    EXPECT_EQ((*got)->level, "encrypt");
    EXPECT_FALSE((*got)->expires.has_value());

    ASSERT_TRUE(p->clear_override("e.example", "carol", t0 + 3h));
    got = p->active_override("e.example", t0 + 3h);
    ASSERT_TRUE(got);
    EXPECT_FALSE(got->has_value());
    auto cleared = p->clear_override("e.example", "carol", t0 + 4h);
    ASSERT_FALSE(cleared);
    EXPECT_EQ(cleared.error(), common::Errc::not_found);

    auto audit = p->audit("e.example");
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
        auto r = p->set_override(b.domain, b.level, b.reason, b.expires, t0, "alice");
        ASSERT_FALSE(r) << b.name;
        EXPECT_EQ(r.error(), common::Errc::invalid_argument) << b.name;
    }
    auto after = p->audit("e.example");
    ASSERT_TRUE(after);
    EXPECT_EQ(after->size(), 3u);
}

TEST_F(PolicyStoreTest, IncidentsAreAppendOnlyInOrderPerDomain) {
    auto a = incident("a.example", t0, "starttls_missing", "mx.a.example: STARTTLS not offered");
    a.host = "mx.a.example";
    a.address = "192.0.2.10";
    a.raw_evidence = "250-XXXXXXXA";
    ASSERT_TRUE(p->add_incident(a));
    ASSERT_TRUE(p->add_incident(incident("b.example", t0, "handshake_failed", "x")));
    ASSERT_TRUE(p->add_incident(incident("a.example", t0 + 1min, "starttls_454", "454 4.7.0 TLS not available")));
    auto inc = p->incidents("a.example");
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

    RawDb raw(file());
    EXPECT_THROW(raw.exec("UPDATE policy_incidents SET kind = 'nothing' WHERE domain = 'a.example'"),
                 std::runtime_error);
    EXPECT_THROW(raw.exec("DELETE FROM policy_incidents"), std::runtime_error);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM policy_incidents"), 3);
}

TEST_F(PolicyStoreTest, ProbeHistoryIsAppendOnlyNewestFirst) {
    ASSERT_TRUE(p->raise("f.example", "encrypt", std::vector<MxEvidence>{}, "{}", t0));
    auto got = p->get("f.example");
    ASSERT_TRUE(got && got->has_value());
    EXPECT_FALSE((*got)->last_probe.has_value());

    const char* levels[] = {"encrypt", "may", "verify"};  // a probe may see less: history, not policy
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(p->record_probe("f.example", levels[i], "{\"n\":" + std::to_string(i) + "}", t0 + i * 1h));
    ASSERT_TRUE(p->record_probe("g.example", "none", "{}", t0 + 10h));

    auto pr = p->probes("f.example", 2);
    ASSERT_TRUE(pr);
    ASSERT_EQ(pr->size(), 2u);
    EXPECT_EQ((*pr)[0].level, "verify");
    EXPECT_EQ((*pr)[0].report, "{\"n\":2}");
    EXPECT_EQ((*pr)[0].at, t0 + 2h);
    EXPECT_EQ((*pr)[1].level, "may");
    auto all = p->probes("f.example", 100);
    ASSERT_TRUE(all);
    EXPECT_EQ(all->size(), 3u);

    got = p->get("f.example");
    ASSERT_TRUE(got && got->has_value());
    EXPECT_EQ((*got)->last_probe, t0 + 2h);
    EXPECT_EQ((*got)->level, "encrypt");  // recording a probe raises nothing by itself

    RawDb raw(file());
    EXPECT_THROW(raw.exec("UPDATE probe_history SET level = 'dane'"), std::runtime_error);
    EXPECT_THROW(raw.exec("DELETE FROM probe_history WHERE domain = 'f.example'"), std::runtime_error);
    EXPECT_THROW(raw.exec("DELETE FROM policy_audit"), std::runtime_error);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM probe_history"), 4);
}

TEST_F(PolicyStoreTest, SchemaRefusesLevelsOffTheLadder) {
    RawDb raw(file());
    const char* bad[] = {
        "INSERT INTO learned_policy VALUES ('x.example', 'strong', 9, 0, 0, '{}')",
        "INSERT INTO probe_history (domain, at, level, report) VALUES ('x.example', 0, 'best', "
        "'{}')",
        "INSERT INTO policy_overrides VALUES ('x.example', 'off', 'r', NULL, 0, 'a')",
        "INSERT INTO policy_overrides VALUES ('x.example', 'may', '', NULL, 0, 'a')",
        "INSERT INTO policy_overrides VALUES ('x.example', 'may', 'r', 5, 10, 'a')",
        "INSERT INTO policy_audit (at, who, action, domain, level, detail) VALUES (0, 'a', "
        "'lower', 'x', '', '')",
        "PRAGMA foreign_keys=ON; INSERT INTO policy_evidence VALUES ('nowhere.example', 'h', 'a', "
        "'verify', 1, '', '', 1, 1, '', 0, 0)",
    };
    for (const char* sql : bad) EXPECT_THROW(raw.exec(sql), std::runtime_error) << sql;
}

// Files made by older builds: v1 (queue only) and v2 (first-slice policy) upgrade to the latest
// schema with their data intact.
TEST(PolicyStoreMigration, V1AndV2FilesUpgradeKeepingQueueAndPolicyData) {
    for (int from : {1, 2}) {
        TempDir tmp;
        const auto file = tmp.path() / "mailward.db";
        {
            auto db = sqlite::Db::open(file, 1000);
            ASSERT_TRUE(db);
            auto v = sqlite::migrate(*db, sqlite::migrations().first(static_cast<std::size_t>(from)));
            ASSERT_TRUE(v) << v.error().message();
            ASSERT_EQ(*v, from);
        }
        {
            RawDb raw(file);
            raw.exec(
                "INSERT INTO messages VALUES ('q1', 'alice@example.test', '7bit', 0, 1, '', '', "
                "'alice', "
                "'192.0.2.1', 'client.example', 'tls-only', 1700000000000, 2, NULL, NULL);"
                "INSERT INTO bodies VALUES ('q1', X'6869');"
                "INSERT INTO recipients VALUES ('q1', 0, 'bob@example.org', 'example.org', '', 0, "
                "'queued', 2, "
                "1700000060000, '451 later');");
            if (from == 2)
                raw.exec(
                    "INSERT INTO learned_policy VALUES ('example.org', 'verify', 3, 1700000000000, "
                    "1700000001000, "
                    "'{\"probe\":1}');"
                    "INSERT INTO policy_incidents (domain, at, kind, detail) VALUES "
                    "('example.org', 1700000002000, "
                    "'tls_failed', 'handshake failed');");
        }
        auto s = sqlite::SqliteStore::open(file);
        ASSERT_TRUE(s) << s.error().message();
        {
            RawDb raw(file);
            EXPECT_EQ(raw.integer("PRAGMA user_version"), sqlite::latest_schema_version());
        }
        auto env = (*s)->queue().envelope("q1");
        ASSERT_TRUE(env) << "from v" << from;
        EXPECT_TRUE(env->requiretls);
        EXPECT_EQ(env->sender_mode, "tls-only");
        ASSERT_EQ(env->recipients.size(), 1u);
        EXPECT_EQ(env->recipients[0].attempts, 2);
        EXPECT_EQ(env->recipients[0].last_error, "451 later");
        auto body = (*s)->queue().body("q1");
        ASSERT_TRUE(body);
        EXPECT_EQ(*body, "hi");

        auto& p = (*s)->policy();
        auto got = p.get("example.org");
        ASSERT_TRUE(got);
        if (from == 1) {
            EXPECT_FALSE(got->has_value());
            continue;
        }
        ASSERT_TRUE(got->has_value());
        EXPECT_EQ((*got)->level, "verify");
        EXPECT_EQ((*got)->evidence, "{\"probe\":1}");
        EXPECT_EQ((*got)->last_confirmed, ms(1700000001000));
        EXPECT_FALSE((*got)->last_probe.has_value());
        EXPECT_TRUE((*got)->mx.empty());
        auto inc = p.incidents("example.org");
        ASSERT_TRUE(inc);
        ASSERT_EQ(inc->size(), 1u);
        EXPECT_EQ((*inc)[0].kind, "tls_failed");
        EXPECT_EQ((*inc)[0].raw_evidence, "");
        // The ratchet continues from what the old build learned.
        auto r = p.raise("example.org", "encrypt", std::vector<MxEvidence>{}, "{}", ms(1700000009000));
        ASSERT_TRUE(r);
        EXPECT_FALSE(*r);
        got = p.get("example.org");
        ASSERT_TRUE(got && got->has_value());
        EXPECT_EQ((*got)->level, "verify");
    }
}

}  // namespace
