// The work hint between nodes (PgStore::set_work_hint, LISTEN/NOTIFY): a message committed through
// one node wakes the other at once; a listener whose connection is killed reconnects and hints
// again; a hint that was reset is never called. Each test has a database of its own.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "pg_test_util.hpp"
#include "store/postgres/pg_store.hpp"
#include "store_test_util.hpp"

using namespace mailward;
using namespace mailward::store;
using namespace mailward::store::test;
using namespace std::chrono_literals;

namespace {

struct Hints {
    std::mutex mu;
    std::condition_variable cv;
    int count = 0;
    std::function<void()> callback() {
        return [this] {
            std::lock_guard lk(mu);
            ++count;
            cv.notify_all();
        };
    }
    int now() {
        std::lock_guard lk(mu);
        return count;
    }
    // True once count exceeds n within d.
    bool above(int n, std::chrono::milliseconds d) {
        std::unique_lock lk(mu);
        return cv.wait_for(lk, d, [&] { return count > n; });
    }
};

struct PgNotifyTest : PgTest {};

}  // namespace

TEST_F(PgNotifyTest, AMessageQueuedThroughOneNodeWakesTheOther) {
    auto a = node();
    auto b = node();
    ASSERT_TRUE(a && b);
    Hints hints;
    b->set_work_hint(hints.callback());
    ASSERT_TRUE(hints.above(0, 10s)) << "the first hint comes once the listener is connected";
    const int base = hints.now();
    ASSERT_TRUE(submit_sync(a->queue(), simple_message("01pgnotify00000001")));
    EXPECT_TRUE(hints.above(base, 5s)) << "node B was not told of node A's message";

    // The listener's connection dies (a PostgreSQL restart, a failover): it connects again within
    // its 5 s retry, hints once for what it may have missed, and is told of the next message.
    auto pid =
        db->query("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'");
    ASSERT_TRUE(pid && !pid->empty());
    EXPECT_EQ(db->query("SELECT pg_terminate_backend($1, 5000)", {*pid}).value_or(""), "t");
    const int before_reconnect = hints.now();
    ASSERT_TRUE(hints.above(before_reconnect, 15s)) << "no hint after the listener reconnected";
    // Connected again (a new backend listens): then a message wakes it again.
    auto again =
        db->query("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'");
    ASSERT_TRUE(again && !again->empty());
    EXPECT_NE(*again, *pid);
    const int base2 = hints.now();
    ASSERT_TRUE(submit_sync(a->queue(), simple_message("01pgnotify00000002")));
    EXPECT_TRUE(hints.above(base2, 5s));

    // Reset: the listener is gone, nothing calls the old hint any more.
    b->set_work_hint(nullptr);
    const int after_reset = hints.now();
    ASSERT_TRUE(submit_sync(a->queue(), simple_message("01pgnotify00000003")));
    EXPECT_FALSE(hints.above(after_reset, 1s));
    EXPECT_EQ(db->query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND query LIKE 'LISTEN %' AND state = 'idle'")
                  .value_or(""),
              "0");
}
