// The learned policy on PostgreSQL, what several nodes on one database need: a level raised (or
// forgotten, overridden, an incident recorded) through one node is what the other reads at once; a
// raise that waits on another node's uncommitted raise ends at the stricter level, never the weaker
// one it was offered (a deterministic interleaving, held open from a raw connection); concurrent
// raises and confirms from threads on two nodes end at the maximum level ever offered; the schema
// refuses lowering a level, rewriting history and levels off the ladder whoever connects.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <barrier>
#include <future>
#include <random>
#include <thread>

#include "pg_test_util.hpp"
#include "policy_test_util.hpp"
#include "store/postgres/pg_store.hpp"

using namespace mailward;
using namespace mailward::store;
using namespace mailward::store::test;
using namespace std::chrono_literals;

namespace {

const TimePoint t0 = kPolicyT0;

struct PgPolicyTest : PgTest {
    std::string level_of(const std::string& domain) const {
        return db->query("SELECT level FROM learned_policy WHERE domain = $1", {domain}).value_or("?");
    }
};

// A connection of the test's own that keeps a transaction open across statements (the other node
// caught in the middle of its change).
class RawTx {
  public:
    explicit RawTx(const std::string& dsn) : c_(PQconnectdb(dsn.c_str())) {
        ok_ = PQstatus(c_) == CONNECTION_OK && exec("BEGIN");
    }
    ~RawTx() { PQfinish(c_); }
    RawTx(const RawTx&) = delete;
    RawTx& operator=(const RawTx&) = delete;
    bool ok() const { return ok_; }
    bool exec(const std::string& sql) {
        PGresult* r = PQexec(c_, sql.c_str());
        const auto st = PQresultStatus(r);
        const bool good = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        if (!good) ADD_FAILURE() << sql << ": " << PQresultErrorMessage(r);
        PQclear(r);
        return good;
    }

  private:
    PGconn* c_;
    bool ok_ = false;
};

// Waits until some session of the test database waits for a lock (the node's raise, blocked).
bool someone_waits_for_a_lock(const PgDatabase& db) {
    for (int i = 0; i < 500; ++i) {
        if (db.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                     " AND wait_event_type = 'Lock'")
                .value_or("0") != "0")
            return true;
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

}  // namespace

// Whatever one node changes, the other node reads at once: no cache, one database.
TEST_F(PgPolicyTest, WhatOneNodeLearnsTheOtherSeesAtOnce) {
    auto a = node();
    auto b = node();
    ASSERT_TRUE(a && b);
    auto& pa = a->policy();
    auto& pb = b->policy();

    ASSERT_TRUE(pa.raise("shared.example", "verify", {ev("mx.shared.example", "192.0.2.5", "verify")}, "{}", t0));
    auto got = pb.get("shared.example");
    ASSERT_TRUE(got && got->has_value());
    EXPECT_EQ((*got)->level, "verify");
    ASSERT_EQ((*got)->mx.size(), 1u);
    EXPECT_EQ((*got)->mx[0].address, "192.0.2.5");

    // B's weaker evidence does not lower what A learned; B's raise is seen by A.
    auto weaker = pb.raise("shared.example", "encrypt", std::vector<MxEvidence>{}, "{}", t0 + 1h);
    ASSERT_TRUE(weaker);
    EXPECT_FALSE(*weaker);
    ASSERT_TRUE(pb.raise("shared.example", "dane", std::vector<MxEvidence>{}, "{}", t0 + 2h));
    got = pa.get("shared.example");
    ASSERT_TRUE(got && got->has_value());
    EXPECT_EQ((*got)->level, "dane");

    ASSERT_TRUE(pa.set_override("shared.example", "may", "partner fixing TLS", std::nullopt, t0 + 3h, "alice"));
    auto ov = pb.active_override("shared.example", t0 + 3h);
    ASSERT_TRUE(ov && ov->has_value());
    EXPECT_EQ((*ov)->set_by, "alice");
    ASSERT_TRUE(pb.add_incident(incident("shared.example", t0 + 4h, "starttls_missing", "mx: no STARTTLS")));
    auto inc = pa.incidents("shared.example");
    ASSERT_TRUE(inc);
    EXPECT_EQ(inc->size(), 1u);

    ASSERT_TRUE(pb.forget("shared.example", "bob", t0 + 5h));
    got = pa.get("shared.example");
    ASSERT_TRUE(got);
    EXPECT_FALSE(got->has_value());
    auto audit = pa.audit("shared.example");
    ASSERT_TRUE(audit);
    ASSERT_EQ(audit->size(), 4u);  // learned, raised (by B), override (A), forget (B)
    EXPECT_EQ((*audit)[1].detail, "raised from verify");
    EXPECT_EQ((*audit)[3].who, "bob");
}

// The race the ratchet must win: another node's raise to a stricter level is in flight (its
// transaction holds the row, uncommitted) when this node, which last saw a weaker level, offers a
// level between the two. This node's raise waits, then compares with the committed level and
// changes nothing. Also for a domain neither node knew yet (the other node's INSERT in flight).
TEST_F(PgPolicyTest, ARaiseRacingAStricterOneEndsAtTheStricter) {
    struct Case {
        const char* name;
        const char* before;  // learned before the race ("" = nothing)
        const char* other;   // the other node's uncommitted statement
        const char* offered;
        const char* want;
        bool want_changed;
        std::size_t want_audit;
    };
    const Case cases[] = {
        {"raise in flight", "may", "UPDATE learned_policy SET level = 'verify', rank = 3 WHERE domain = 'race.example'",
         "encrypt", "verify", false, 1},
        {"first learning in flight", "", "INSERT INTO learned_policy VALUES ('race.example', 'verify', 3, 0, 0, '{}')",
         "encrypt", "verify", false, 0},
        {"weaker raise in flight", "may",
         "UPDATE learned_policy SET level = 'encrypt', rank = 2 WHERE domain = 'race.example'", "verify", "verify",
         true, 2},
        {"same level in flight", "", "INSERT INTO learned_policy VALUES ('race.example', 'encrypt', 2, 0, 0, '{}')",
         "encrypt", "encrypt", false, 0},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        db = std::make_unique<PgDatabase>(*pg_server_dsn());
        ASSERT_TRUE(db->ok());
        auto a = node();
        auto b = node();
        ASSERT_TRUE(a && b);
        if (*c.before) {
            ASSERT_TRUE(a->policy().raise("race.example", c.before, std::vector<MxEvidence>{}, "{}", t0));
        }
        auto seen = b->policy().get("race.example");  // what B knows before the race
        ASSERT_TRUE(seen);
        EXPECT_EQ(seen->has_value(), *c.before != '\0');

        RawTx other(db->dsn());
        ASSERT_TRUE(other.ok());
        ASSERT_TRUE(other.exec(c.other));
        auto raised = std::async(std::launch::async, [&] {
            return b->policy().raise("race.example", c.offered, {ev("mx.race.example", "192.0.2.6", c.offered)},
                                     "{\"b\":1}", t0 + 1h);
        });
        ASSERT_TRUE(someone_waits_for_a_lock(*db));
        EXPECT_EQ(raised.wait_for(0s), std::future_status::timeout);  // B waits for the other node
        ASSERT_TRUE(other.exec("COMMIT"));
        auto r = raised.get();
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(*r, c.want_changed);
        EXPECT_EQ(level_of("race.example"), c.want);
        auto got = a->policy().get("race.example");
        ASSERT_TRUE(got && got->has_value());
        EXPECT_EQ((*got)->level, c.want);
        // Evidence is written when the offer met the level (raised or confirmed), not when weaker.
        const bool met = level_rank(c.offered) >= level_rank(c.want);
        EXPECT_EQ((*got)->mx.size(), met ? 1u : 0u);
        auto audit = a->policy().audit("race.example");
        ASSERT_TRUE(audit);
        EXPECT_EQ(audit->size(), c.want_audit);
    }
}

// Two nodes, two threads each, 200 rounds on a fresh domain per round; in each round every thread
// offers random levels (and sometimes confirms) at once. Every domain ends at the maximum level
// offered to it; no thread ever reads a level below one it saw committed; the audit's raises only
// climb.
TEST_F(PgPolicyTest, ConcurrentRaisesFromTwoNodesEndAtTheMaximumOffered) {
    auto a = node();
    auto b = node();
    ASSERT_TRUE(a && b);
    constexpr int kThreads = 4, kRounds = 200, kOffers = 2;
    const char* kLevels[] = {"none", "may", "encrypt", "verify", "dane"};
    std::vector<std::array<int, kOffers>> offered(static_cast<std::size_t>(kThreads * kRounds));
    std::atomic<int> failures{0}, lowered{0};
    std::barrier sync(kThreads);
    auto domain = [](int round) { return "r" + std::to_string(round) + ".example"; };

    auto work = [&](int t) {
        PolicyStore& ps = (t % 2 == 0 ? a : b)->policy();
        std::mt19937 rng(static_cast<unsigned>(1000 + t));
        for (int round = 0; round < kRounds; ++round) {
            sync.arrive_and_wait();  // every thread on the same domain at once
            int seen = -1;
            for (int k = 0; k < kOffers; ++k) {
                const int level = static_cast<int>(rng() % 5);
                offered[static_cast<std::size_t>(round * kThreads + t)][static_cast<std::size_t>(k)] = level;
                const auto when = t0 + std::chrono::milliseconds(round * 100 + t * 10 + k);
                auto r = ps.raise(domain(round), kLevels[level], {ev("mx.example", "192.0.2.1", kLevels[level])}, "{}",
                                  when);
                if (!r) ++failures;
                if (rng() % 4 == 0 && !ps.confirm(domain(round), {}, when)) ++failures;
                auto got = ps.get(domain(round));
                if (!got || !got->has_value()) {
                    ++failures;
                    continue;
                }
                const int now = *level_rank((*got)->level);
                if (now < level || now < seen) ++lowered;
                seen = now;
            }
        }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) threads.emplace_back(work, t);
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(lowered.load(), 0);

    auto all = a->policy().list();
    ASSERT_TRUE(all);
    ASSERT_EQ(all->size(), static_cast<std::size_t>(kRounds));
    int checked = 0;
    for (int round = 0; round < kRounds; ++round) {
        int max = 0;
        for (int t = 0; t < kThreads; ++t)
            for (int level : offered[static_cast<std::size_t>(round * kThreads + t)]) max = std::max(max, level);
        EXPECT_EQ(level_of(domain(round)), kLevels[max]) << domain(round);
        auto audit = b->policy().audit(domain(round));
        ASSERT_TRUE(audit);
        int last = -1;
        for (const auto& row : *audit) {
            ASSERT_EQ(row.action, "raise");
            const int r = *level_rank(row.level);
            EXPECT_GT(r, last) << domain(round) << ": the audit shows a raise that did not climb";
            last = r;
        }
        EXPECT_EQ(last, max) << domain(round);
        ++checked;
    }
    EXPECT_EQ(checked, kRounds);
}

// The schema holds the rules against any client, not only this store: no lowering, no rewriting
// of history, no level off the ladder, no rank that disagrees with its level.
TEST_F(PgPolicyTest, TheSchemaRefusesLoweringRewritingAndBadLevels) {
    auto a = node();
    ASSERT_TRUE(a);
    auto& ps = a->policy();
    ASSERT_TRUE(ps.raise("s.example", "verify", {ev("mx.s.example", "192.0.2.8", "verify")}, "{}", t0));
    ASSERT_TRUE(ps.record_probe("s.example", "verify", "{}", t0));
    ASSERT_TRUE(ps.add_incident(incident("s.example", t0, "handshake_failed", "x")));
    struct Case {
        const char* sql;
        const char* error;  // a part of the server's message
    };
    const Case refused[] = {
        {"UPDATE learned_policy SET level = 'may', rank = 1", "may not be lowered"},
        {"UPDATE learned_policy SET level = 'none', rank = 0 WHERE domain = 's.example'", "may not be lowered"},
        {"UPDATE learned_policy SET level = 'dane'", "check constraint"},  // rank left at 3
        {"UPDATE probe_history SET level = 'dane'", "append-only"},
        {"DELETE FROM probe_history", "append-only"},
        {"TRUNCATE probe_history", "append-only"},
        {"UPDATE policy_incidents SET kind = 'nothing'", "append-only"},
        {"DELETE FROM policy_incidents WHERE domain = 's.example'", "append-only"},
        {"TRUNCATE policy_incidents", "append-only"},
        {"UPDATE policy_audit SET who = 'nobody'", "append-only"},
        {"DELETE FROM policy_audit", "append-only"},
        {"TRUNCATE policy_audit", "append-only"},
        {"INSERT INTO learned_policy VALUES ('x.example', 'strong', 9, 0, 0, '{}')", "check constraint"},
        {"INSERT INTO learned_policy VALUES ('x.example', 'may', 3, 0, 0, '{}')", "check constraint"},
        {"INSERT INTO probe_history (domain, at, level, report) VALUES ('x.example', 0, 'best', '{}')",
         "check constraint"},
        {"INSERT INTO policy_overrides VALUES ('x.example', 'off', 'r', NULL, 0, 'a')", "check constraint"},
        {"INSERT INTO policy_overrides VALUES ('x.example', 'may', '', NULL, 0, 'a')", "check constraint"},
        {"INSERT INTO policy_overrides VALUES ('x.example', 'may', 'r', 5, 10, 'a')", "check constraint"},
        {"INSERT INTO policy_audit (at, who, action, domain, level, detail) VALUES (0, 'a', 'lower', 'x', '', '')",
         "check constraint"},
        {"INSERT INTO policy_evidence VALUES ('nowhere.example', 'h', 'a', 'verify', true, '', '', true, true, '',"
         " false, 0)",
         "foreign key"},
    };
    for (const auto& c : refused) EXPECT_NE(db->error_of(c.sql).find(c.error), std::string::npos) << c.sql;
    EXPECT_EQ(level_of("s.example"), "verify");
    EXPECT_EQ(db->query("SELECT count(*) FROM probe_history").value_or(""), "1");
    EXPECT_EQ(db->query("SELECT count(*) FROM policy_incidents").value_or(""), "1");
    EXPECT_EQ(db->query("SELECT count(*) FROM policy_audit").value_or(""), "1");
    // Raising and forgetting are still allowed to anyone who may (the administrator's forget).
    EXPECT_EQ(db->error_of("UPDATE learned_policy SET level = 'dane', rank = 4"), "");
    EXPECT_EQ(db->error_of("DELETE FROM learned_policy WHERE domain = 's.example'"), "");
    EXPECT_EQ(db->query("SELECT count(*) FROM policy_evidence").value_or(""), "0");  // with its evidence
}

// A database of the first slice (schema version 1, queue and users) gains the policy tables when a
// main node of this build opens it, and keeps its queue. (Version 1 is made here by removing what
// the later versions add.)
TEST_F(PgPolicyTest, AVersion1DatabaseGainsThePolicyAndKeepsItsQueue) {
    {
        auto a = node();
        ASSERT_TRUE(a);
        ASSERT_TRUE(submit_sync(a->queue(), simple_message("01pgpolicyupgrade0")));
    }
    for (const char* sql : {
             // What versions 2 (policy), 3 (escrow), 4 (MTA-STS), 5 (delay notices), 6 (TLS-RPT)
             // and 7 (receipts) add: a version 1 database as an older build left it.
             "DROP TABLE policy_evidence, learned_policy, probe_history, policy_incidents, policy_overrides,"
             " policy_audit, mta_sts_policies, tlsrpt_counts, tlsrpt_sent, escrow_audit, escrow_sessions, "
             "escrow_codes, escrow_keys, "
             "escrow_messages",
             "DROP INDEX recipients_awaiting",
             "ALTER TABLE recipients DROP COLUMN delay_warned",
             "ALTER TABLE users DROP COLUMN receipts",
             "DROP FUNCTION mailward_refuse_lowering(), mailward_append_only()",
             "DELETE FROM schema_version WHERE version > 1",
         })
        ASSERT_TRUE(db->query(sql)) << sql;
    ASSERT_EQ(db->query("SELECT max(version) FROM schema_version").value_or(""), "1");
    {
        postgres::Options opts;
        opts.role = Role::portal;  // only the main role migrates
        auto early = postgres::PgStore::open(db->dsn(), std::move(opts));
        ASSERT_FALSE(early);
        EXPECT_EQ(early.error(), common::Errc::unsupported);
    }
    auto a = node();
    ASSERT_TRUE(a);
    EXPECT_EQ(db->query("SELECT max(version) FROM schema_version").value_or(""),
              std::to_string(postgres::latest_schema_version()));
    auto env = a->queue().envelope("01pgpolicyupgrade0");
    ASSERT_TRUE(env) << env.error().message();
    EXPECT_EQ(env->recipients.size(), 1u);
    ASSERT_TRUE(a->policy().raise("up.example", "verify", std::vector<MxEvidence>{}, "{}", t0));
    EXPECT_EQ(level_of("up.example"), "verify");
}
