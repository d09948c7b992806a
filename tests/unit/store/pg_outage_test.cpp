// The PostgreSQL store while its database is away for a moment (a Patroni failover): a delivery's
// outcome whose COMMIT failed is written again while the lease lasts instead of leaving the message
// to a second delivery; a submission in the same failed batch is still reported as failed (never
// retried behind its client's back); a database that stays away ends the retries after the lease time.
// The writer's server process is killed just before COMMIT (Options::before_commit).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <thread>

#include "pg_test_util.hpp"
#include "store/postgres/pg_store.hpp"
#include "store_test_util.hpp"

using namespace mailward;
using namespace mailward::store;
using namespace mailward::store::test;
using namespace std::chrono_literals;

namespace {

struct PgOutageTest : PgTest {};

StoredMessage due_message(std::string id, TimePoint due) {
    auto m = simple_message(std::move(id));
    m.envelope.recipients[0].next_attempt = due;
    return m;
}

}  // namespace

TEST_F(PgOutageTest, AnOutcomeWhoseCommitFailedIsWrittenAgainWhileTheLeaseLasts) {
    struct Case {
        const char* what;
        int kills;                            // COMMITs that fail (the writer's backend killed first)
        std::chrono::milliseconds lease_for;  // of lease_due: how long the outcome is retried
        bool written;
    };
    const Case cases[] = {
        {"the database answers again: written on a retry", 1, 30s, true},
        {"two failures in a row: written on the third try", 2, 30s, true},
        {"the database stays away: the error once the lease time is over", 1000, 2s, false},
    };
    int n = 0;
    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        std::atomic<bool> armed{false};
        std::atomic<int> kills{0};
        postgres::Options opts;
        opts.commit_interval = 300ms;  // the outcome and the submission below share the first batch
        opts.before_commit = [&](int pid) {
            if (!armed || kills >= c.kills) return;
            ++kills;
            auto r = db->query("SELECT pg_terminate_backend($1, 5000)", {std::to_string(pid)});
            EXPECT_EQ(r.value_or(""), "t");
        };
        auto opened = postgres::PgStore::open(db->dsn(), std::move(opts));
        ASSERT_TRUE(opened) << opened.error().message();
        auto& s = **opened;
        const auto t0 = ms(1'800'000'000'000);
        char leased[19], other[19];
        std::snprintf(leased, sizeof leased, "01outageleased%04d", n);
        std::snprintf(other, sizeof other, "01outageothers%04d", n++);
        ASSERT_TRUE(submit_sync(s.queue(), due_message(leased, t0)));
        auto l = s.queue().lease_due(t0, 10, "node-a", c.lease_for);
        ASSERT_TRUE(l);
        ASSERT_EQ(l->size(), 1u);
        const auto commits_before = s.stats().commits;

        armed = true;
        std::promise<Result<void>> outcome, submitted;
        const auto start = std::chrono::steady_clock::now();
        s.queue().complete_attempt_async(leased, "node-a", {{0, RcptState::delivered, 1, t0, "250 2.0.0 ok"}},
                                         [&](Result<void> r) { outcome.set_value(r); });
        s.queue().submit(due_message(other, t0), [&](Result<void> r) { submitted.set_value(r); });
        auto sub = submitted.get_future().get();
        ASSERT_FALSE(sub);  // its client is told: it submits again, the store does not
        EXPECT_EQ(sub.error(), common::Errc::storage_error);
        auto fut = outcome.get_future();
        ASSERT_EQ(fut.wait_for(30s), std::future_status::ready);
        auto r = fut.get();
        const auto took = std::chrono::steady_clock::now() - start;
        armed = false;

        EXPECT_EQ(s.queue().envelope(other).error(), common::Errc::not_found);
        auto env = s.queue().envelope(leased);
        ASSERT_TRUE(env);
        if (c.written) {
            ASSERT_TRUE(r) << r.error().message();
            EXPECT_EQ(kills.load(), c.kills);
            EXPECT_EQ(env->recipients[0].state, RcptState::delivered);
            EXPECT_EQ(env->recipients[0].last_error, "250 2.0.0 ok");
            EXPECT_EQ(s.stats().failed_commits, static_cast<std::uint64_t>(c.kills));
            EXPECT_EQ(s.stats().commits, commits_before + 1);
            EXPECT_LT(took, 10s);
        } else {
            ASSERT_FALSE(r);
            EXPECT_EQ(r.error(), common::Errc::storage_error);
            EXPECT_EQ(env->recipients[0].state, RcptState::queued);
            EXPECT_GE(kills.load(), 3);
            EXPECT_GE(took, c.lease_for - 600ms);
            EXPECT_LT(took, c.lease_for + 5s);
        }
        s.close();
    }
}

// A retry still waiting when the store closes gets one last try at once: close() does not wait out the
// retry interval, and the outcome is written if the database answers.
TEST_F(PgOutageTest, ARetryPendingAtCloseIsTriedOnceMore) {
    std::atomic<bool> armed{false};
    std::atomic<int> kills{0};
    postgres::Options opts;
    opts.before_commit = [&](int pid) {
        if (!armed || kills.exchange(1) == 1) return;
        db->query("SELECT pg_terminate_backend($1, 5000)", {std::to_string(pid)});
    };
    auto opened = postgres::PgStore::open(db->dsn(), std::move(opts));
    ASSERT_TRUE(opened);
    auto& s = **opened;
    const auto t0 = ms(1'800'000'000'000);
    ASSERT_TRUE(submit_sync(s.queue(), due_message("01outageclose00001", t0)));
    ASSERT_EQ(s.queue().lease_due(t0, 10, "node-a", 60s)->size(), 1u);
    armed = true;
    std::promise<Result<void>> outcome;
    s.queue().complete_attempt_async("01outageclose00001", "node-a", {{0, RcptState::delivered, 1, t0, "250 ok"}},
                                     [&](Result<void> r) { outcome.set_value(r); });
    // The first try failed and the retry waits (500 ms) when close() comes.
    while (s.stats().failed_commits == 0) std::this_thread::sleep_for(5ms);
    std::this_thread::sleep_for(150ms);  // its completion has scheduled the retry
    const auto start = std::chrono::steady_clock::now();
    s.close();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 400ms);
    auto fut = outcome.get_future();
    ASSERT_EQ(fut.wait_for(0s), std::future_status::ready);
    EXPECT_TRUE(fut.get());
    auto check = postgres::PgStore::open(db->dsn());
    ASSERT_TRUE(check);
    EXPECT_EQ((*check)->queue().envelope("01outageclose00001")->recipients[0].state, RcptState::delivered);
}
