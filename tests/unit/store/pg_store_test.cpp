// What only the PostgreSQL store does (several nodes on one database): two nodes never hold a lease
// on one message at once; an expired lease is taken over and the old holder's outcome is refused
// (owner and generation); a failed COMMIT is reported to every submitter of its batch and no
// completion runs before COMMIT; nodes starting together migrate once; bodies are insert-once.
// Each test has a database of its own on the fixture's server (pg_test_util.hpp).
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "config/config.hpp"
#include "pg_test_util.hpp"
#include "store/escrow_reader.hpp"
#include "store/postgres/pg_store.hpp"
#include "store_test_util.hpp"

using namespace mailward;
using namespace mailward::store;
using namespace mailward::store::test;
using namespace std::chrono_literals;

namespace {

struct PgStoreTest : PgTest {};

StoredMessage due_message(std::string id, TimePoint due) {
    auto m = simple_message(std::move(id));
    m.envelope.recipients[0].next_attempt = due;
    return m;
}

std::string id_of(int i) {
    char id[19];
    std::snprintf(id, sizeof id, "01pgpgpgpgpgpg%04d", i);
    return id;
}

}  // namespace

// Two nodes (two stores, two owners, two threads each) drain one queue: every message is leased
// exactly once (the leases are long, so a second lease would be a double delivery) and delivered.
TEST_F(PgStoreTest, TwoNodesNeverLeaseTheSameMessageAtOnce) {
    auto a = node();
    auto b = node();
    ASSERT_TRUE(a && b);
    const auto t0 = ms(1'800'000'000'000);
    constexpr int kMessages = 300;
    for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(submit_sync(a->queue(), due_message(id_of(i), t0)));

    std::mutex mu;
    std::map<std::string, int> leases;  // id -> times leased
    std::atomic<int> completed{0}, errors{0};
    auto work = [&](postgres::PgStore& s, std::string owner) {
        const auto deadline = std::chrono::steady_clock::now() + 30s;
        while (completed.load() < kMessages && std::chrono::steady_clock::now() < deadline) {
            auto got = s.queue().lease_due(t0, 7, owner, 10min);
            if (!got) {
                ++errors;
                return;
            }
            for (const auto& e : *got) {
                {
                    std::lock_guard lk(mu);
                    ++leases[e.id];
                }
                if (s.queue().complete_attempt(e.id, owner, {{0, RcptState::delivered, 1, t0, "250 ok"}})) ++completed;
                else ++errors;
            }
            if (got->empty()) std::this_thread::sleep_for(1ms);
        }
    };
    std::vector<std::thread> threads;
    threads.emplace_back(work, std::ref(*a), "node-a");
    threads.emplace_back(work, std::ref(*a), "node-a");
    threads.emplace_back(work, std::ref(*b), "node-b");
    threads.emplace_back(work, std::ref(*b), "node-b");
    for (auto& t : threads) t.join();

    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(completed.load(), kMessages);
    ASSERT_EQ(leases.size(), static_cast<std::size_t>(kMessages));
    for (const auto& [id, n] : leases) EXPECT_EQ(n, 1) << id << " was leased " << n << " times";
    EXPECT_EQ(*a->queue().count(), 0u);
    EXPECT_EQ(*b->queue().count(), 0u);
}

// A node that outlives its lease loses the message to another node; its late outcome is refused and
// changes nothing, and the new holder's outcome counts. The generation, not only the owner name,
// decides: two processes under one owner name (two nodes with the same hostname) are told apart.
TEST_F(PgStoreTest, ExpiredLeaseIsTakenOverAndTheStaleOutcomeRefused) {
    struct Case {
        const char* what;
        const char* owner_a;
        const char* owner_b;
    };
    const Case cases[] = {
        {"different owners", "node-a", "node-b"},
        {"one owner name, two processes", "node", "node"},
    };
    int n = 0;
    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        auto a = node();
        auto b = node();
        ASSERT_TRUE(a && b);
        const auto t0 = ms(1'800'000'000'000);
        const auto id = id_of(n++);
        ASSERT_TRUE(submit_sync(a->queue(), due_message(id, t0)));
        auto la = a->queue().lease_due(t0, 10, c.owner_a, 1min);
        ASSERT_TRUE(la && la->size() == 1);
        EXPECT_TRUE(b->queue().lease_due(t0 + 30s, 10, c.owner_b, 1min)->empty());  // live: not taken
        auto lb = b->queue().lease_due(t0 + 2min, 10, c.owner_b, 1min);             // expired: taken over
        ASSERT_TRUE(lb);
        ASSERT_EQ(lb->size(), 1u);

        auto stale = a->queue().complete_attempt(id, c.owner_a, {{0, RcptState::failed, 1, t0, "550 stale"}});
        ASSERT_FALSE(stale);
        EXPECT_EQ(stale.error(), postgres::PgErrc::lease_lost);
        auto env = a->queue().envelope(id);
        ASSERT_TRUE(env);
        EXPECT_EQ(env->recipients[0].state, RcptState::queued);
        EXPECT_EQ(env->recipients[0].attempts, 0);
        EXPECT_TRUE(a->queue().body(id));

        std::promise<Result<void>> async_done;
        a->queue().complete_attempt_async(id, c.owner_a, {{0, RcptState::failed, 1, t0, "550 stale"}},
                                          [&](Result<void> r) { async_done.set_value(r); });
        auto ar = async_done.get_future().get();
        ASSERT_FALSE(ar);
        EXPECT_EQ(ar.error(), postgres::PgErrc::lease_lost);

        ASSERT_TRUE(b->queue().complete_attempt(id, c.owner_b, {{0, RcptState::delivered, 1, t0, "250 ok"}}));
        env = b->queue().envelope(id);
        EXPECT_EQ(env->recipients[0].state, RcptState::delivered);
        EXPECT_EQ(env->recipients[0].last_error, "250 ok");
    }
}

// An expired lease nobody took over is still the holder's: its outcome is applied.
TEST_F(PgStoreTest, ExpiredLeaseNotTakenOverStillCompletes) {
    auto a = node();
    ASSERT_TRUE(a);
    const auto t0 = ms(1'800'000'000'000);
    ASSERT_TRUE(submit_sync(a->queue(), due_message(id_of(1), t0)));
    ASSERT_EQ(a->queue().lease_due(t0, 10, "node-a", 1ms)->size(), 1u);
    std::this_thread::sleep_for(5ms);
    ASSERT_TRUE(a->queue().complete_attempt(id_of(1), "node-a", {{0, RcptState::delivered, 1, t0, "250 ok"}}));
    EXPECT_EQ(a->queue().envelope(id_of(1))->recipients[0].state, RcptState::delivered);
}

// The writer's connection is killed just before COMMIT: every submitter of that batch learns it
// failed, none of the messages is there, no completion ran before COMMIT was attempted, and the
// writer reconnects for the next batch.
TEST_F(PgStoreTest, FailedCommitIsReportedToEverySubmitterOfTheBatch) {
    constexpr int kMessages = 10;
    std::atomic<int> completions{0};
    std::atomic<int> completions_before_commit{-1};
    std::atomic<bool> killed{false};
    postgres::Options opts;
    opts.commit_interval = 300ms;  // gathers the submissions below into one batch
    opts.before_commit = [&](int pid) {
        if (killed.exchange(true)) return;
        completions_before_commit = completions.load();
        // Waits until the backend has exited (PostgreSQL 14+: the timeout argument).
        auto r = db->query("SELECT pg_terminate_backend($1, 5000)", {std::to_string(pid)});
        EXPECT_EQ(r.value_or(""), "t");
    };
    auto s = node(std::move(opts));
    ASSERT_TRUE(s);

    std::mutex mu;
    std::condition_variable cv;
    std::vector<Result<void>> results;
    for (int i = 0; i < kMessages; ++i) {
        s->queue().submit(due_message(id_of(i), ms(1'800'000'000'000)), [&](Result<void> r) {
            ++completions;
            std::lock_guard lk(mu);
            results.push_back(r);
            cv.notify_one();
        });
    }
    {
        std::unique_lock lk(mu);
        ASSERT_TRUE(cv.wait_for(lk, 30s, [&] { return results.size() == kMessages; }));
    }
    EXPECT_EQ(completions_before_commit.load(), 0);
    for (const auto& r : results) {
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), common::Errc::storage_error);
    }
    for (int i = 0; i < kMessages; ++i) EXPECT_EQ(s->queue().envelope(id_of(i)).error(), common::Errc::not_found);
    EXPECT_EQ(*s->queue().count(), 0u);
    auto stats = s->stats();
    EXPECT_EQ(stats.failed_commits, 1u);
    EXPECT_EQ(stats.commits, 0u);
    EXPECT_EQ(stats.rejected, static_cast<std::uint64_t>(kMessages));

    // The next batch goes through on a new connection.
    ASSERT_TRUE(submit_sync(s->queue(), due_message(id_of(99), ms(1'800'000'000'000))));
    EXPECT_EQ(*s->queue().count(), 1u);
    EXPECT_EQ(s->stats().commits, 1u);
}

// Concurrent submissions share transactions, and every completion finds its message stored.
TEST_F(PgStoreTest, ConcurrentSubmittersShareCommits) {
    auto s = node();
    ASSERT_TRUE(s);
    constexpr int kThreads = 8, kEach = 25;
    std::atomic<int> ok{0}, seen{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                const auto id = id_of(t * kEach + i);
                if (submit_sync(s->queue(), due_message(id, ms(1'800'000'000'000)))) {
                    ++ok;
                    if (s->queue().envelope(id)) ++seen;  // durable when done ran: readable at once
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok.load(), kThreads * kEach);
    EXPECT_EQ(seen.load(), kThreads * kEach);
    EXPECT_LT(s->stats().commits, static_cast<std::uint64_t>(kThreads * kEach));
    EXPECT_GT(s->stats().largest_batch, 1u);
}

// A duplicate id fails alone; the rest of its batch is stored.
TEST_F(PgStoreTest, ADuplicateFailsAloneInItsBatch) {
    postgres::Options opts;
    opts.commit_interval = 200ms;
    auto s = node(std::move(opts));
    ASSERT_TRUE(s);
    std::promise<Result<void>> p1, p2, p3;
    s->queue().submit(due_message(id_of(1), ms(1)), [&](Result<void> r) { p1.set_value(r); });
    s->queue().submit(due_message(id_of(1), ms(1)), [&](Result<void> r) { p2.set_value(r); });
    s->queue().submit(due_message(id_of(2), ms(1)), [&](Result<void> r) { p3.set_value(r); });
    EXPECT_TRUE(p1.get_future().get());
    auto dup = p2.get_future().get();
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error(), common::Errc::already_exists);
    EXPECT_TRUE(p3.get_future().get());
    EXPECT_EQ(*s->queue().count(), 2u);
    EXPECT_EQ(s->stats().commits, 1u);
}

// Three nodes opening a fresh database at once migrate it once; a role other than main needs it
// migrated already.
TEST_F(PgStoreTest, NodesStartingTogetherMigrateOnce) {
    {
        postgres::Options opts;
        opts.role = Role::submission;
        auto early = postgres::PgStore::open(db->dsn(), std::move(opts));
        ASSERT_FALSE(early);
        EXPECT_EQ(early.error(), common::Errc::unsupported);
    }
    std::atomic<int> opened{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i)
        threads.emplace_back([&] {
            if (postgres::PgStore::open(db->dsn())) ++opened;
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(opened.load(), 3);
    // One row per step (version is the key; steps may skip numbers while branches merge).
    EXPECT_EQ(db->query("SELECT max(version) FROM schema_version").value_or(""),
              std::to_string(postgres::latest_schema_version()));
    postgres::Options opts;
    opts.role = Role::portal;
    EXPECT_TRUE(postgres::PgStore::open(db->dsn(), std::move(opts)));
}

// The body is stored as bytea in the transaction of its message and can never be rewritten.
TEST_F(PgStoreTest, BodiesAreInsertOnceBytea) {
    auto s = node();
    ASSERT_TRUE(s);
    ASSERT_TRUE(submit_sync(s->queue(), full_message()));
    const auto id = full_message().envelope.id;
    EXPECT_EQ(db->query("SELECT pg_typeof(data)::text FROM bodies WHERE message_id = $1", {id}).value_or(""), "bytea");
    EXPECT_EQ(db->query("SELECT length(data) FROM bodies WHERE message_id = $1", {id}).value_or(""),
              std::to_string(full_message().body.size()));
    EXPECT_EQ(db->query("SELECT string_agg(domain, '|' ORDER BY idx) FROM recipients WHERE message_id = $1", {id})
                  .value_or(""),
              "example.org|例子.测试|");
    EXPECT_NE(db->error_of("UPDATE bodies SET data = 'x'::bytea WHERE message_id = $1", {id}).find("insert-once"),
              std::string::npos);
    EXPECT_EQ(*s->queue().body(id), full_message().body);
}

// [store] backend = "postgres": store::open gives the whole store (queue, users, policy, escrow) on
// the database, every role once main has migrated it, and the key holder's reader.
TEST_F(PgStoreTest, StoreOpenServesEveryRoleFromTheDsn) {
    config::Config cfg;
    cfg.store.backend = "postgres";
    cfg.store.dsn = db->dsn();
    {
        auto early = store::open(cfg, Role::portal);  // nothing migrated yet: refused
        ASSERT_FALSE(early);
        EXPECT_EQ(early.error(), common::Errc::unsupported);
    }
    auto main = store::open(cfg, Role::main);
    ASSERT_TRUE(main) << main.error().message();
    ASSERT_TRUE(submit_sync((*main)->queue(), simple_message("01pgopenopenopen01")));
    ASSERT_TRUE(
        (*main)->policy().raise("open.example", "verify", std::vector<MxEvidence>{}, "{}", ms(1'800'000'000'000)));
    auto smtp = store::open(cfg, Role::submission);
    ASSERT_TRUE(smtp) << smtp.error().message();
    EXPECT_TRUE((*smtp)->queue().envelope("01pgopenopenopen01"));
    auto learned = (*smtp)->policy().get("open.example");
    ASSERT_TRUE(learned && learned->has_value());
    EXPECT_EQ((*learned)->level, "verify");
    auto reader = store::open_escrow_reader(cfg);
    ASSERT_TRUE(reader) << reader.error().message();
    auto none = (*reader)->get("no-such-escrow-id");
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error(), common::Errc::not_found);
    (*smtp)->close();
    (*main)->close();
}
