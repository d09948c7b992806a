// The learned policy store, what only SQLite has: its schema's triggers (history tables append-only)
// and CHECKs, the evidence rows forget drops, and the upgrade of files made by older builds (schema v1
// and v2) without losing queue or policy data. The behaviour every backend shares is in
// policy_contract_test.cpp (PolicyContract, run on SQLite and PostgreSQL).
#include <gtest/gtest.h>

#include "policy_test_util.hpp"
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

const TimePoint t0 = kPolicyT0;

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

TEST_F(PolicyStoreTest, ForgetDeletesTheEvidenceRows) {
    ASSERT_TRUE(p->raise("d.example", "verify", {ev("mx.d.example", "192.0.2.4", "verify")}, "{}", t0));
    RawDb raw(file());
    EXPECT_EQ(raw.integer("SELECT count(*) FROM policy_evidence WHERE domain = 'd.example'"), 1);
    ASSERT_TRUE(p->forget("d.example", "bob", t0 + 3h));
    EXPECT_EQ(raw.integer("SELECT count(*) FROM policy_evidence WHERE domain = 'd.example'"), 0);
}

// probe_history, policy_incidents and policy_audit refuse UPDATE and DELETE (triggers).
TEST_F(PolicyStoreTest, HistoryTablesAreAppendOnly) {
    ASSERT_TRUE(p->raise("f.example", "encrypt", std::vector<MxEvidence>{}, "{}", t0));
    ASSERT_TRUE(p->record_probe("f.example", "encrypt", "{}", t0));
    ASSERT_TRUE(p->add_incident(incident("f.example", t0, "starttls_missing", "x")));
    RawDb raw(file());
    const char* refused[] = {
        "UPDATE policy_incidents SET kind = 'nothing' WHERE domain = 'f.example'",
        "DELETE FROM policy_incidents",
        "UPDATE probe_history SET level = 'dane'",
        "DELETE FROM probe_history WHERE domain = 'f.example'",
        "UPDATE policy_audit SET who = 'nobody'",
        "DELETE FROM policy_audit",
    };
    for (const char* sql : refused) EXPECT_THROW(raw.exec(sql), std::runtime_error) << sql;
    EXPECT_EQ(raw.integer("SELECT count(*) FROM policy_incidents"), 1);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM probe_history"), 1);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM policy_audit"), 1);
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
