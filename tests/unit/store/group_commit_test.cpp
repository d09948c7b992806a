// Group commit in the SQLite store: concurrent submitters share commits, the caps and the commit
// interval shape batches, close() flushes what was queued and later submits fail with
// shutting_down, a failed COMMIT is rolled back and reported to every submitter of the batch, a bad
// message fails alone, and readers run while the writer commits.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "common/gcc_wrestrict.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store_test_util.hpp"

namespace mailward::store::sqlite {
namespace {

using test::simple_message;
using test::submit_sync;
using test::TempDir;

// The test message "m<i>" (GCC bug 105651 reports a false -Wrestrict on "m" + a temporary string).
StoredMessage numbered(int i) {
    MAILWARD_GCC_WRESTRICT_OFF
    std::string id = "m" + std::to_string(i);
    MAILWARD_GCC_WRESTRICT_ON
    return simple_message(std::move(id));
}

// Collects completions of fire-and-forget submits.
struct Completions {
    std::mutex mu;
    std::vector<std::pair<std::string, Result<void>>> got;
    QueueStore::SubmitDone make(std::string id) {
        return [this, id](Result<void> r) {
            std::lock_guard lk(mu);
            got.emplace_back(id, r);
        };
    }
    std::size_t size() {
        std::lock_guard lk(mu);
        return got.size();
    }
};

std::string id_of(int thread, int i) { return "t" + std::to_string(thread) + "-" + std::to_string(i); }

TEST(GroupCommit, ConcurrentSubmittersShareCommits) {
    TempDir tmp;
    auto s = test::open_sqlite(tmp.path());
    ASSERT_TRUE(s);
    constexpr int kThreads = 8, kEach = 200;
    std::atomic<int> ok{0}, failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            // Like an SMTP session: wait for durability (the 250) before the next message.
            for (int i = 0; i < kEach; ++i) {
                auto r = submit_sync(s->queue(), simple_message(id_of(t, i), std::string(1024, 'a' + t)));
                (r ? ok : failed)++;
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(ok.load(), kThreads * kEach);
    EXPECT_EQ(failed.load(), 0);
    auto st = s->stats();
    std::printf("[ figures  ] %d waiting submitters x %d: submitted=%llu commits=%llu largest batch=%llu\n", kThreads,
                kEach, static_cast<unsigned long long>(st.submitted), static_cast<unsigned long long>(st.commits),
                static_cast<unsigned long long>(st.largest_batch));
    EXPECT_EQ(s->submitted(), static_cast<std::uint64_t>(kThreads * kEach));
    EXPECT_EQ(st.stored, static_cast<std::uint64_t>(kThreads * kEach));
    EXPECT_LT(s->commits(), s->submitted());
    EXPECT_GT(st.largest_batch, 1u);
    EXPECT_EQ(*s->queue().count(), static_cast<std::size_t>(kThreads * kEach));
    auto body = s->queue().body(id_of(7, 199));
    ASSERT_TRUE(body);
    EXPECT_EQ(*body, std::string(1024, 'h'));
}

TEST(GroupCommit, CommitIntervalGathersABatch) {
    TempDir tmp;
    Options o;
    o.commit_interval = std::chrono::milliseconds(300);
    auto s = test::open_sqlite(tmp.path(), o);
    Completions c;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) s->queue().submit(numbered(i), c.make(""));
    while (c.size() < 20) std::this_thread::sleep_for(std::chrono::milliseconds(5));   // no close()
    EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(250));  // it waited
    for (auto& [id, r] : c.got) EXPECT_TRUE(r);
    EXPECT_LE(s->commits(), 2u);
    EXPECT_EQ(*s->queue().count(), 20u);
}

TEST(GroupCommit, BatchCapsAreRespected) {
    TempDir tmp;
    Options o;
    o.commit_interval = std::chrono::milliseconds(50);
    o.max_batch_messages = 4;
    auto s = test::open_sqlite(tmp.path(), o);
    Completions c;
    for (int i = 0; i < 20; ++i) s->queue().submit(numbered(i), c.make(""));
    s->close();
    ASSERT_EQ(c.size(), 20u);
    EXPECT_LE(s->stats().largest_batch, 4u);
    EXPECT_GE(s->commits(), 5u);

    TempDir tmp2;
    Options big;
    big.commit_interval = std::chrono::milliseconds(50);
    big.max_batch_bytes = 10'000;    // each message ~4 KiB: at most 2 per batch, a huge one alone
    big.spool_min_bytes = SIZE_MAX;  // the caps are about bodies inside the transaction
    auto s2 = test::open_sqlite(tmp2.path(), big);
    Completions c2;
    s2->queue().submit(simple_message("huge", std::string(100'000, 'x')), c2.make(""));
    for (int i = 0; i < 6; ++i)
        s2->queue().submit(simple_message("k" + std::to_string(i), std::string(4096, 'y')), c2.make(""));
    s2->close();
    ASSERT_EQ(c2.size(), 7u);
    for (auto& [id, r] : c2.got) EXPECT_TRUE(r);
    EXPECT_LE(s2->stats().largest_batch, 2u);
    EXPECT_EQ(s2->queue().body("huge")->size(), 100'000u);
}

TEST(GroupCommit, CloseFlushesQueuedSubmitsThenRefusesNewOnes) {
    TempDir tmp;
    Options o;
    o.commit_interval = std::chrono::seconds(30);  // close must not wait for it
    {
        auto s = test::open_sqlite(tmp.path(), o);
        Completions c;
        for (int i = 0; i < 50; ++i) s->queue().submit(numbered(i), c.make(""));
        auto t0 = std::chrono::steady_clock::now();
        s->close();
        EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
        ASSERT_EQ(c.size(), 50u);  // every completion ran before close() returned
        for (auto& [id, r] : c.got) EXPECT_TRUE(r);

        bool called = false;
        s->queue().submit(simple_message("late"), [&](Result<void> r) {
            called = true;
            ASSERT_FALSE(r);
            EXPECT_EQ(r.error(), common::Errc::shutting_down);
        });
        EXPECT_TRUE(called);              // completed at once, never dropped
        s->close();                       // idempotent
        EXPECT_TRUE(s->queue().count());  // reads still work
    }
    auto s = test::open_sqlite(tmp.path());
    EXPECT_EQ(*s->queue().count(), 50u);
    EXPECT_EQ(s->queue().envelope("late").error(), common::Errc::not_found);
}

TEST(GroupCommit, DestructorFlushesLikeClose) {
    TempDir tmp;
    Completions c;
    {
        Options o;
        o.commit_interval = std::chrono::seconds(30);
        auto s = test::open_sqlite(tmp.path(), o);
        for (int i = 0; i < 10; ++i) s->queue().submit(numbered(i), c.make(""));
    }
    ASSERT_EQ(c.size(), 10u);
    for (auto& [id, r] : c.got) EXPECT_TRUE(r);
    auto s = test::open_sqlite(tmp.path());
    EXPECT_EQ(*s->queue().count(), 10u);
}

TEST(GroupCommit, FailedCommitIsRolledBackAndReportedToEverySubmitter) {
    TempDir tmp;
    std::atomic<bool> sabotage{true};
    Options o;
    o.commit_interval = std::chrono::milliseconds(200);
    // A deferred foreign-key violation makes the real COMMIT fail (SQLITE_CONSTRAINT_FOREIGNKEY).
    o.before_commit = [&sabotage](sqlite3* db) {
        if (sabotage)
            sqlite3_exec(db,
                         "PRAGMA defer_foreign_keys=ON; INSERT INTO bodies (message_id, data) "
                         "VALUES ('ghost', x'00')",
                         nullptr, nullptr, nullptr);
    };
    auto s = test::open_sqlite(tmp.path(), o);
    Completions c;
    for (int i = 0; i < 5; ++i) s->queue().submit(numbered(i), c.make(""));
    while (c.size() < 5) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    for (auto& [id, r] : c.got) {
        ASSERT_FALSE(r) << "a failed commit reported success";
        EXPECT_EQ(r.error(), common::Errc::storage_error);
    }
    EXPECT_GE(s->stats().failed_commits, 1u);
    EXPECT_EQ(s->stats().stored, 0u);
    EXPECT_EQ(*s->queue().count(), 0u);
    EXPECT_EQ(s->queue().envelope("m0").error(), common::Errc::not_found);
    EXPECT_EQ(s->queue().body("ghost").error(), common::Errc::not_found);

    // The writer recovers: the same messages go through once the fault is gone.
    sabotage = false;
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(submit_sync(s->queue(), numbered(i)));
    EXPECT_EQ(*s->queue().count(), 5u);
}

TEST(GroupCommit, ABadMessageFailsAloneInItsBatch) {
    TempDir tmp;
    Options o;
    o.commit_interval = std::chrono::milliseconds(200);
    auto s = test::open_sqlite(tmp.path(), o);
    Completions c;
    s->queue().submit(simple_message("a", "first"), c.make("a"));
    s->queue().submit(simple_message("b"), c.make("b"));
    s->queue().submit(simple_message("a", "second"), c.make("a-dup"));
    auto bad = simple_message("c");
    bad.envelope.recipients[0].notify = 99;  // violates the schema's CHECK
    s->queue().submit(bad, c.make("c-bad"));
    s->queue().submit(simple_message("d"), c.make("d"));
    s->close();
    ASSERT_EQ(c.size(), 5u);
    for (auto& [id, r] : c.got) {
        if (id == "a-dup") {
            ASSERT_FALSE(r);
            EXPECT_EQ(r.error(), common::Errc::already_exists);
        } else if (id == "c-bad") {
            EXPECT_FALSE(r);
        } else {
            EXPECT_TRUE(r) << id;
        }
    }
    EXPECT_EQ(*s->queue().body("a"), "first");
    EXPECT_TRUE(s->queue().envelope("d"));
    EXPECT_EQ(s->queue().envelope("c").error(), common::Errc::not_found);  // nothing half-written
    EXPECT_EQ(*s->queue().count(), 3u);
}

TEST(GroupCommit, CompletionsMayUseTheStore) {
    TempDir tmp;
    auto s = test::open_sqlite(tmp.path());
    std::promise<std::size_t> seen;
    auto f = seen.get_future();
    s->queue().submit(simple_message("x"), [&](Result<void> r) {
        ASSERT_TRUE(r);
        seen.set_value(*s->queue().count());  // no lock is held while completions run
    });
    ASSERT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    EXPECT_EQ(f.get(), 1u);
}

TEST(GroupCommit, ReadersRunWhileTheWriterCommits) {
    TempDir tmp;
    auto s = test::open_sqlite(tmp.path());
    constexpr int kWriters = 4, kEach = 100;
    std::atomic<bool> writing{true};
    std::atomic<int> read_errors{0}, reads{0}, non_monotonic{0};
    std::vector<std::thread> readers;
    for (int r = 0; r < 3; ++r) {
        readers.emplace_back([&, r] {
            std::size_t last = 0;
            while (writing) {
                auto n = s->queue().count();
                auto l = s->queue().list();
                if (!n || !l) {
                    ++read_errors;
                    continue;
                }
                if (*n < last) ++non_monotonic;
                last = *n;
                if (!l->empty()) {
                    auto e = s->queue().envelope(l->back().id);
                    auto b = s->queue().body(l->back().id);
                    if (!e || !b || e->recipients.size() != 1) ++read_errors;
                }
                if (r == 0) {  // small writes on the shared connection, concurrently with the writer
                    if (!s->users().add(User{"u" + std::to_string(reads.load()), "h", "", {}})) ++read_errors;
                }
                ++reads;
            }
        });
    }
    std::vector<std::thread> writers;
    std::atomic<int> ok{0};
    for (int t = 0; t < kWriters; ++t) {
        writers.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i)
                if (submit_sync(s->queue(), simple_message(id_of(t, i)))) ++ok;
        });
    }
    for (auto& w : writers) w.join();
    writing = false;
    for (auto& r : readers) r.join();
    EXPECT_EQ(ok.load(), kWriters * kEach);
    EXPECT_EQ(read_errors.load(), 0);
    EXPECT_EQ(non_monotonic.load(), 0);
    EXPECT_GT(reads.load(), 0);
    EXPECT_EQ(*s->queue().count(), static_cast<std::size_t>(kWriters * kEach));
}

}  // namespace
}  // namespace mailward::store::sqlite
