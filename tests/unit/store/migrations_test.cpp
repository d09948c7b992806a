// Schema migrations: a fresh file gets the latest version and mailward's application_id, reopening
// changes nothing, a file from a newer build or another application is refused, and an upgrade
// applies only the missing steps, each atomically.
#include "store/sqlite/migrations.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "store/sqlite/db.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store_test_util.hpp"

namespace mailward::store::sqlite {
namespace {

using test::RawDb;
using test::simple_message;
using test::submit_sync;
using test::TempDir;

TEST(Migrations, FreshDatabaseGetsLatestVersionWalAndApplicationId) {
    TempDir tmp;
    auto file = tmp.path() / "mailward.db";
    {
        auto s = SqliteStore::open(file);
        ASSERT_TRUE(s) << s.error().message();
    }
    RawDb raw(file);
    EXPECT_EQ(raw.integer("PRAGMA user_version"), latest_schema_version());
    EXPECT_EQ(raw.integer("PRAGMA application_id"), kApplicationId);
    EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");
    for (const char* table : {"messages", "bodies", "recipients", "users"})
        EXPECT_EQ(
            raw.integer(std::string("SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='") + table + "'"),
            1)
            << table;
    EXPECT_EQ(raw.integer("SELECT count(*) FROM sqlite_schema WHERE name='recipients_due'"), 1);
}

TEST(Migrations, ReopeningIsANoOpAndKeepsData) {
    TempDir tmp;
    auto file = tmp.path() / "mailward.db";
    {
        auto s = SqliteStore::open(file);
        ASSERT_TRUE(s);
        ASSERT_TRUE(submit_sync((*s)->queue(), simple_message("keep")));
    }
    std::string schema_before;
    {
        RawDb raw(file);
        schema_before = raw.text("SELECT group_concat(sql, ';') FROM sqlite_schema");
    }
    auto db = Db::open(file, 1000);
    ASSERT_TRUE(db);
    auto v = migrate(*db);
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, latest_schema_version());

    auto s = SqliteStore::open(file);
    ASSERT_TRUE(s);
    EXPECT_TRUE((*s)->queue().envelope("keep"));
    RawDb raw(file);
    EXPECT_EQ(raw.text("SELECT group_concat(sql, ';') FROM sqlite_schema"), schema_before);
    EXPECT_EQ(raw.integer("PRAGMA user_version"), latest_schema_version());
}

TEST(Migrations, NewerSchemaIsRefused) {
    TempDir tmp;
    auto file = tmp.path() / "mailward.db";
    { ASSERT_TRUE(SqliteStore::open(file)); }
    {
        RawDb raw(file);
        raw.exec("PRAGMA user_version=" + std::to_string(latest_schema_version() + 1));
    }
    auto s = SqliteStore::open(file);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), common::Errc::unsupported);
    RawDb raw(file);  // and it was not touched
    EXPECT_EQ(raw.integer("PRAGMA user_version"), latest_schema_version() + 1);
}

TEST(Migrations, ForeignFilesAreRefused) {
    TempDir tmp;
    auto other_app = tmp.path() / "other.db";
    {
        RawDb raw(other_app);
        raw.exec("PRAGMA application_id=1234");
    }
    auto a = SqliteStore::open(other_app);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error(), common::Errc::corrupt);

    auto unmarked = tmp.path() / "unmarked.db";
    {
        RawDb raw(unmarked);
        raw.exec("CREATE TABLE t (x)");
    }
    auto b = SqliteStore::open(unmarked);
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error(), common::Errc::corrupt);
    RawDb raw(unmarked);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM sqlite_schema WHERE name='messages'"), 0);

    auto garbage = tmp.path() / "garbage.db";
    { std::ofstream(garbage) << std::string(8192, 'x'); }
    auto c = SqliteStore::open(garbage);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error(), common::Errc::corrupt);
}

TEST(Migrations, UpgradeAppliesOnlyMissingStepsAndAFailingStepLeavesNothing) {
    TempDir tmp;
    auto file = tmp.path() / "t.db";
    auto db = Db::open(file, 1000);
    ASSERT_TRUE(db);
    const Migration v1[] = {{1, "one", "CREATE TABLE a (x INTEGER) STRICT;"}};
    const Migration v2[] = {{1, "one", "CREATE TABLE a (x INTEGER) STRICT;"},
                            {2, "two", "CREATE TABLE b (y INTEGER) STRICT; INSERT INTO a VALUES (2);"}};
    const Migration bad3[] = {v2[0], v2[1], {3, "three", "CREATE TABLE c (z INTEGER); INSERT INTO nosuch VALUES (1);"}};
    auto r1 = migrate(*db, v1);
    ASSERT_TRUE(r1);
    EXPECT_EQ(*r1, 1);
    auto r2 = migrate(*db, v2);  // step 1 must not run again (CREATE TABLE a would fail)
    ASSERT_TRUE(r2) << r2.error().message();
    EXPECT_EQ(*r2, 2);
    auto r3 = migrate(*db, bad3);
    ASSERT_FALSE(r3);

    RawDb raw(file);
    EXPECT_EQ(raw.integer("PRAGMA user_version"), 2);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM a"), 1);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM sqlite_schema WHERE name='c'"), 0);  // rolled back
}

}  // namespace
}  // namespace mailward::store::sqlite
