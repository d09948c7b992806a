// store/sqlite/db.hpp set_busy_timeout: a writer that finds another connection's write lock waits
// for it (checking often, so a short commit costs it little) up to its timeout, and no longer;
// without a timeout it gets SQLITE_BUSY at once.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <thread>

#include "store/sqlite/db.hpp"
#include "temp_dir.hpp"

using namespace mailward;
using store::sqlite::Db;
using Clock = std::chrono::steady_clock;

namespace {

int exec(Db& db, const char* sql) { return sqlite3_exec(db.handle(), sql, nullptr, nullptr, nullptr); }

}  // namespace

TEST(BusyTimeout, WaitsForAShortLockThenGivesUpAtItsLimit) {
    test::TempDir dir;
    const auto file = dir.path() / "busy.db";
    auto holder = Db::open(file, 1000);
    ASSERT_TRUE(holder);
    ASSERT_EQ(exec(*holder, "PRAGMA journal_mode=WAL; CREATE TABLE t(x)"), SQLITE_OK);
    auto waiter = Db::open(file, 2000);
    auto impatient = Db::open(file, 1000);
    ASSERT_TRUE(waiter && impatient);
    ASSERT_EQ(store::sqlite::set_busy_timeout(impatient->handle(), 0), SQLITE_OK);

    // The lock held for 30 ms: the waiter gets it soon after, well before its 2 s limit.
    ASSERT_EQ(exec(*holder, "BEGIN IMMEDIATE; INSERT INTO t VALUES (1)"), SQLITE_OK);
    EXPECT_EQ(exec(*impatient, "BEGIN IMMEDIATE"), SQLITE_BUSY);  // no timeout: at once
    std::thread release([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        exec(*holder, "COMMIT");
    });
    const auto t0 = Clock::now();
    EXPECT_EQ(exec(*waiter, "BEGIN IMMEDIATE; INSERT INTO t VALUES (2); COMMIT"), SQLITE_OK);
    const auto waited = Clock::now() - t0;
    release.join();
    EXPECT_GE(waited, std::chrono::milliseconds(25));
    EXPECT_LT(waited, std::chrono::milliseconds(500));

    // Held for good: a 50 ms limit gives up after about 50 ms.
    ASSERT_EQ(exec(*holder, "BEGIN IMMEDIATE"), SQLITE_OK);
    ASSERT_EQ(store::sqlite::set_busy_timeout(waiter->handle(), 50), SQLITE_OK);
    const auto t1 = Clock::now();
    EXPECT_EQ(exec(*waiter, "BEGIN IMMEDIATE"), SQLITE_BUSY);
    const auto gave_up = Clock::now() - t1;
    EXPECT_GE(gave_up, std::chrono::milliseconds(40));
    EXPECT_LT(gave_up, std::chrono::milliseconds(1000));
    exec(*holder, "COMMIT");
}
