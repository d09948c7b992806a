// The SQLite store through the public interface: data_dir creation, backend selection, how an
// envelope is stored, concurrent user adds through two connections. Each test has its own temp dir.
// The behaviour every backend shares is in store_contract_test.cpp.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <string_view>
#include <thread>
#include <vector>

#include "store/sqlite/sqlite_store.hpp"
#include "store_test_util.hpp"

namespace mailward::store {
namespace {

using test::config_for;
using test::ms;
using test::RawDb;
using test::simple_message;
using test::submit_sync;
using test::TempDir;
using namespace std::literals;

std::unique_ptr<Store> must_open(const std::filesystem::path& dir) {
    auto s = open(config_for(dir));
    if (!s) ADD_FAILURE() << "open: " << s.error().message();
    return s ? std::move(*s) : nullptr;
}

unsigned mode_of(const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
}

TEST(StoreOpen, CreatesPrivateDataDirAndDatabase) {
    TempDir tmp;
    auto dir = tmp.path() / "var" / "lib" / "mailward";
    auto s = must_open(dir);
    ASSERT_TRUE(s);
    EXPECT_EQ(mode_of(tmp.path() / "var"), 0700u);
    EXPECT_EQ(mode_of(dir), 0700u);
    EXPECT_EQ(mode_of(dir / "mailward.db"), 0600u);
    ASSERT_TRUE(submit_sync(s->queue(), simple_message("m1")));
    EXPECT_EQ(mode_of(dir / "mailward.db-wal"), 0600u);  // WAL mode, same mode as the db
}

TEST(StoreOpen, RelativeDataDirIsRelativeToCwd) {
    TempDir tmp;
    auto old = std::filesystem::current_path();
    std::filesystem::current_path(tmp.path());
    auto s = open(config_for("rel/data"));
    std::filesystem::current_path(old);
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_TRUE(std::filesystem::exists(tmp.path() / "rel" / "data" / "mailward.db"));
}

TEST(StoreOpen, BackendSelection) {
    TempDir tmp;
    auto cfg = config_for(tmp.path());
    // PostgreSQL that does not answer (port 1 on loopback): a storage error, not a crash or a hang.
    cfg.store.backend = "postgres";
    cfg.store.dsn = "host=127.0.0.1 port=1 dbname=mailward connect_timeout=2";
    auto pg = open(cfg);
    ASSERT_FALSE(pg);
    EXPECT_EQ(pg.error(), common::Errc::storage_error);

    cfg.store.backend = "oracle";
    auto bad = open(cfg);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error(), common::Errc::invalid_argument);

    auto cfg2 = config_for(tmp.path() / "file");
    { std::ofstream(tmp.path() / "file") << "x"; }
    auto notdir = open(cfg2);
    EXPECT_FALSE(notdir);
}

TEST(RcptStateNames, MatchTheStoredValues) {
    EXPECT_EQ(to_string(RcptState::queued), "queued");
    EXPECT_EQ(to_string(RcptState::delivered), "delivered");
    EXPECT_EQ(to_string(RcptState::failed), "failed");
    EXPECT_EQ(to_string(RcptState::awaiting_escrow), "awaiting_escrow");
    EXPECT_EQ(to_string(RcptState::escrowed), "escrowed");
    EXPECT_EQ(to_string(RcptState::deleted), "deleted");
}

TEST(QueueStore, StoredDomainsAndBodyType) {
    TempDir tmp;
    auto s = must_open(tmp.path());
    ASSERT_TRUE(s);
    ASSERT_TRUE(submit_sync(s->queue(), test::full_message()));
    s->close();
    RawDb raw(tmp.path() / "mailward.db");
    EXPECT_EQ(raw.text("SELECT group_concat(domain, '|') FROM (SELECT domain FROM recipients ORDER BY idx)"),
              "example.org|例子.测试|");
    EXPECT_EQ(raw.text("SELECT typeof(data) FROM bodies"), "blob");
}

TEST(UserStore, ConcurrentAddsOfOneNameExactlyOneWins) {
    TempDir tmp;
    auto s = must_open(tmp.path());
    auto s2 = sqlite::SqliteStore::open(tmp.path() / "mailward.db");  // a second process, in effect
    ASSERT_TRUE(s2);
    std::atomic<int> ok{0}, exists{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
        threads.emplace_back([&, i] {
            auto& users = (i % 2 ? s->users() : (*s2)->users());
            auto r = users.add(User{"same", "h" + std::to_string(i), "", {}});
            if (r) ++ok;
            else if (r.error() == common::Errc::already_exists) ++exists;
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok.load(), 1);
    EXPECT_EQ(exists.load(), 7);
}

}  // namespace
}  // namespace mailward::store
