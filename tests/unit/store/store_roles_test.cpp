// Store roles (store.hpp, Role; sqlite/role.cpp): the connections of the submission and portal
// processes refuse writes to the tables their role does not own, and schema changes. Run against
// a real temp store: per role, a table of (statement, allowed?) on a restricted connection, then
// the same limits seen through the Store interface.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>

#include "store/sqlite/internal.hpp"
#include "store/store.hpp"
#include "store_test_util.hpp"

namespace mailward::store::test {
namespace {

using namespace std::chrono_literals;

struct Op {
    const char* what;
    const char* sql;
    bool submission;  // allowed for Role::submission
    bool portal;      // allowed for Role::portal
};

// Statements that would change a row of each table (WHERE 0: nothing is actually touched, but
// SQLite authorizes the statement all the same), plus DDL and pragmas.
const Op kOps[] = {
    {"read learned policy", "SELECT count(*) FROM learned_policy", true, true},
    {"read users", "SELECT name, password_hash FROM users", true, true},
    {"read escrow keys", "SELECT count(*) FROM escrow_keys", true, true},
    {"read a pragma", "PRAGMA user_version", true, true},
    {"queue a message", "INSERT INTO messages (id) SELECT 'x' WHERE 0", true, true},
    {"update recipients", "UPDATE recipients SET attempts = 1 WHERE 0", true, true},
    {"delete bodies", "DELETE FROM bodies WHERE 0", true, true},
    {"spool a body", "INSERT INTO spooled_bodies (message_id) SELECT 'x' WHERE 0", true, true},
    {"reclaim spool space", "DELETE FROM spool_free WHERE 0", true, true},
    {"raise a learned policy", "UPDATE learned_policy SET level = 'none' WHERE 0", false, false},
    {"insert learned policy", "INSERT INTO learned_policy (domain) SELECT 'x' WHERE 0", false, false},
    {"forget a learned policy", "DELETE FROM learned_policy WHERE 0", false, false},
    {"write evidence", "DELETE FROM policy_evidence WHERE 0", false, false},
    {"record a probe", "INSERT INTO probe_history (domain) SELECT 'x' WHERE 0", false, false},
    {"add an incident", "INSERT INTO policy_incidents (domain) SELECT 'x' WHERE 0", false, false},
    {"set an override", "INSERT INTO policy_overrides (domain) SELECT 'x' WHERE 0", false, false},
    {"clear an override", "DELETE FROM policy_overrides WHERE 0", false, false},
    {"write the policy audit", "INSERT INTO policy_audit (domain) SELECT 'x' WHERE 0", false, false},
    {"add a user", "INSERT INTO users (name) SELECT 'x' WHERE 0", false, false},
    {"change a password", "UPDATE users SET password_hash = 'x' WHERE 0", false, false},
    {"create a session", "INSERT INTO escrow_sessions (id_hash) SELECT 'x' WHERE 0", false, true},
    {"count a wrong code", "UPDATE escrow_messages SET failed_logins = 1 WHERE 0", false, true},
    {"store a code", "UPDATE escrow_codes SET tries = 1 WHERE 0", false, true},
    {"append escrow audit", "INSERT INTO escrow_audit (escrow_id) SELECT 'x' WHERE 0", false, true},
    {"store a wrapped key", "INSERT INTO escrow_keys (escrow_id) SELECT 'x' WHERE 0", false, false},
    {"shred a wrapped key", "DELETE FROM escrow_keys WHERE 0", false, false},
    {"create a table", "CREATE TABLE evil (x INTEGER)", false, false},
    {"drop a trigger", "DROP TRIGGER probe_history_no_update", false, false},
    {"alter a table", "ALTER TABLE users ADD COLUMN evil TEXT", false, false},
    {"create a temp trigger", "CREATE TEMP TRIGGER t AFTER INSERT ON messages BEGIN SELECT 1; END", false, false},
    {"attach a file", "ATTACH DATABASE ':memory:' AS other", false, false},
    {"set a pragma", "PRAGMA foreign_keys = OFF", false, false},
    {"set the schema version", "PRAGMA user_version = 1", false, false},
};

struct StoreRolesTest : ::testing::Test {
    TempDir dir;
    std::filesystem::path file() const { return dir.path() / "mailward.db"; }
    void SetUp() override {
        auto s = store::open(config_for(dir.path()));  // main: creates and migrates
        ASSERT_TRUE(s) << s.error().message();
        (*s)->close();
    }
    // The SQLite result code of preparing and running sql on a connection restricted to role.
    int run_as(Role role, const char* sql) {
        auto db = sqlite::Db::open(file(), 1000);
        EXPECT_TRUE(db);
        if (!db) return -1;
        EXPECT_TRUE(sqlite::restrict_writes(*db, role));
        sqlite3_stmt* st = nullptr;
        int rc = sqlite3_prepare_v2(db->handle(), sql, -1, &st, nullptr);
        if (rc == SQLITE_OK) {
            while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            }
            if (rc == SQLITE_DONE) rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        return rc;
    }
};

TEST_F(StoreRolesTest, EachRoleWritesOnlyItsTables) {
    for (const auto& op : kOps) {
        for (auto [role, allowed] : {std::pair{Role::submission, op.submission}, std::pair{Role::portal, op.portal},
                                     std::pair{Role::main, true}}) {
            const int rc = run_as(role, op.sql);
            if (allowed) EXPECT_EQ(rc, SQLITE_OK) << to_string(role) << ": " << op.what;
            else EXPECT_EQ(rc, SQLITE_AUTH) << to_string(role) << ": " << op.what << " was allowed";
        }
    }
}

TEST_F(StoreRolesTest, TheSchemaIsUnchangedAfterRefusals) {
    for (const auto& op : kOps) (void)run_as(Role::portal, op.sql);
    auto s = store::open(config_for(dir.path()));
    ASSERT_TRUE(s);
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(file().c_str(), &raw), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT count(*) FROM sqlite_master WHERE name = 'evil'", -1, &st, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(raw);
}

// Through the Store interface: what each process does works, what it must not do fails.
TEST_F(StoreRolesTest, ThePortalQueuesAndKeepsSessionsButCannotTouchPolicyOrUsers) {
    auto cfg = config_for(dir.path());
    auto s = store::open(cfg, Role::portal);
    ASSERT_TRUE(s) << s.error().message();
    Store& st = **s;
    EXPECT_TRUE(submit_sync(st.queue(), simple_message("R1"))) << "a reply is queued";
    EXPECT_TRUE(st.queue().envelope("R1"));
    const auto now = Clock::now();
    EXPECT_FALSE(st.policy().raise("example.org", "verify", std::vector<MxEvidence>{}, "{}", now));
    EXPECT_FALSE(st.policy().record_probe("example.org", "verify", "{}", now));
    EXPECT_FALSE(st.policy().set_override("example.org", "none", "why", std::nullopt, now, "x"));
    User u;
    u.name = "mallory";
    u.password_hash = "x";
    EXPECT_FALSE(st.users().add(u));
    EXPECT_TRUE(st.policy().list()) << "reads still work";
    st.close();
}

TEST_F(StoreRolesTest, SubmissionQueuesButCannotTouchEscrowPolicyOrUsers) {
    {
        auto main = store::open(config_for(dir.path()));
        ASSERT_TRUE(main);
        User u;
        u.name = "alice";
        u.password_hash = "hash";
        ASSERT_TRUE((*main)->users().add(u));
        (*main)->close();
    }
    auto s = store::open(config_for(dir.path()), Role::submission);
    ASSERT_TRUE(s) << s.error().message();
    Store& st = **s;
    auto big = simple_message("B1", "Subject: big\r\n\r\n" + std::string(20000, 'x') + "\r\n");
    EXPECT_TRUE(submit_sync(st.queue(), simple_message("M1")));
    EXPECT_TRUE(submit_sync(st.queue(), std::move(big))) << "a spooled body";
    EXPECT_TRUE(st.users().get("alice")) << "AUTH reads users";
    User u;
    u.name = "alice";
    u.password_hash = "changed";
    EXPECT_FALSE(st.users().update(u));
    EXPECT_EQ(st.users().get("alice")->password_hash, "hash");
    PolicyIncident inc;
    inc.domain = "example.org";
    inc.kind = "downgrade";
    inc.at = Clock::now();
    EXPECT_FALSE(st.policy().add_incident(inc));
    EXPECT_TRUE(st.policy().incidents("example.org")->empty());
    EXPECT_FALSE(st.escrow().create_session(EscrowSession{"sid", "e1", "c", Clock::now(), Clock::now(), {}}));
    st.close();
}

TEST_F(StoreRolesTest, ARoleNeedsAMigratedStore) {
    TempDir empty;
    EXPECT_FALSE(store::open(config_for(empty.path()), Role::portal)) << "no file: not created";
    EXPECT_FALSE(std::filesystem::exists(empty.path() / "mailward.db"));
    {
        sqlite3* raw = nullptr;
        ASSERT_EQ(sqlite3_open((empty.path() / "mailward.db").c_str(), &raw), SQLITE_OK);
        sqlite3_exec(raw, "PRAGMA user_version = 1", nullptr, nullptr, nullptr);
        sqlite3_close(raw);
    }
    auto r = store::open(config_for(empty.path()), Role::submission);
    ASSERT_FALSE(r) << "an old schema is not migrated by a role";
    EXPECT_EQ(r.error(), common::Errc::unsupported);
}

}  // namespace
}  // namespace mailward::store::test
