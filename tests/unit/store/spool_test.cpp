// The body spool (src/store/sqlite/spool.hpp) through the store's interface and on its own: large
// bodies round-trip byte for byte from segment files (sizes from 0 octets to 3 MiB, every byte
// value), small ones stay inline; a body no longer needed is released (its blocks punched out,
// scrubbed first when escrowed or deleted); segments rotate; the sweep removes unused segments and
// crash leftovers but never a segment another process holds; damaged or missing segments are
// errors, not crashes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <random>
#include <set>

#include "store/sqlite/spool.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store_test_util.hpp"

namespace mailward::store::sqlite {
namespace {

using namespace std::chrono_literals;
using test::RawDb;
using test::simple_message;
using test::submit_sync;
using test::TempDir;

// Every body goes to the spool, whatever its size.
Options spool_everything() {
    Options o;
    o.spool_min_bytes = 0;
    return o;
}

std::set<std::string> segment_files(const std::filesystem::path& dir) {
    std::set<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir / "spool")) out.insert(e.path().filename().string());
    return out;
}

long long allocated_bytes(const std::filesystem::path& dir) {
    long long n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir / "spool")) {
        struct stat st {};
        if (::stat(e.path().c_str(), &st) == 0) n += static_cast<long long>(st.st_blocks) * 512;
    }
    return n;
}

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng() & 0xff);
    return s;
}

// Any write through the writer runs a batch, and each batch first releases what was freed.
void run_a_batch(SqliteStore& s, const std::string& id) { ASSERT_TRUE(submit_sync(s.queue(), simple_message(id))); }

// Leasing runs through the writer (a batch): lease everything first, then complete.
void lease_all(SqliteStore& s) { ASSERT_TRUE(s.queue().lease_due(Clock::now() + 1h, 1000, "n", 5min)); }

void deliver(SqliteStore& s, const std::string& id) {
    QueueStore::RecipientUpdate u;
    u.index = 0;
    u.state = RcptState::delivered;
    u.attempts = 1;
    u.next_attempt = Clock::now();
    ASSERT_TRUE(s.queue().complete_attempt(id, "n", {u}));
}

TEST(BodySpool, LargeBodiesRoundTripFromSegmentsSmallOnesStayInline) {
    TempDir tmp;
    Options o;
    o.spool_min_bytes = 1000;
    auto s = test::open_sqlite(tmp.path(), o);
    struct Row {
        const char* id;
        std::size_t size;
        bool spooled;
    } rows[] = {{"tiny", 10, false},
                {"below", 999, false},
                {"at", 1000, true},
                {"page", 4096, true},
                {"odd", 4097, true},
                {"k100", 100 * 1024, true},
                {"mib3", 3 * 1024 * 1024, true}};
    unsigned seed = 1;
    std::map<std::string, std::string> bodies;
    for (const auto& r : rows) {
        bodies[r.id] = random_bytes(r.size, seed++);
        ASSERT_TRUE(submit_sync(s->queue(), simple_message(r.id, bodies[r.id]))) << r.id;
    }
    RawDb raw(tmp.path() / "mailward.db");
    for (const auto& r : rows) {
        auto b = s->queue().body(r.id);
        ASSERT_TRUE(b) << r.id;
        EXPECT_EQ(*b, bodies[r.id]) << r.id;
        EXPECT_EQ(s->queue().envelope(r.id)->size, r.size) << r.id;
        const std::string q = std::string("SELECT count(*) FROM spooled_bodies WHERE message_id = '") + r.id + "'";
        EXPECT_EQ(raw.integer(q), r.spooled ? 1 : 0) << r.id;
        const std::string len = std::string("SELECT length(data) FROM bodies WHERE message_id = '") + r.id + "'";
        EXPECT_EQ(raw.integer(len), r.spooled ? 0 : static_cast<long long>(r.size)) << r.id;
    }
    // Everything survives a restart (segments are found by name).
    s.reset();
    s = test::open_sqlite(tmp.path(), o);
    for (const auto& r : rows) EXPECT_EQ(*s->queue().body(r.id), bodies[r.id]) << r.id;
}

TEST(BodySpool, EveryByteValueAndAnEmptyBodyRoundTrip) {
    TempDir tmp;
    auto s = test::open_sqlite(tmp.path(), spool_everything());
    std::string all;
    for (int rep = 0; rep < 64; ++rep)
        for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
    ASSERT_TRUE(submit_sync(s->queue(), simple_message("all", all)));
    ASSERT_TRUE(submit_sync(s->queue(), simple_message("empty", "")));
    EXPECT_EQ(*s->queue().body("all"), all);
    EXPECT_EQ(*s->queue().body("empty"), "");
}

TEST(BodySpool, ReleasedBodiesGiveTheirBlocksBack) {
    TempDir tmp;
    Options o;
    o.spool_min_bytes = 1024;
    auto s = test::open_sqlite(tmp.path(), o);
    for (int i = 0; i < 20; ++i)
        ASSERT_TRUE(submit_sync(s->queue(), simple_message("m" + std::to_string(i), random_bytes(256 * 1024, i))));
    const long long before = allocated_bytes(tmp.path());
    EXPECT_GE(before, 20LL * 256 * 1024);
    lease_all(*s);
    // Every other body first: released runs are merged only where bodies are adjacent, so the
    // ones in between must come through untouched.
    for (int i = 0; i < 20; i += 2) deliver(*s, "m" + std::to_string(i));
    run_a_batch(*s, "between");
    for (int i = 1; i < 20; i += 2)
        EXPECT_EQ(*s->queue().body("m" + std::to_string(i)), random_bytes(256 * 1024, i)) << i;
    EXPECT_LT(allocated_bytes(tmp.path()), before * 6 / 10);
    for (int i = 1; i < 20; i += 2) deliver(*s, "m" + std::to_string(i));
    RawDb raw(tmp.path() / "mailward.db");
    EXPECT_EQ(raw.integer("SELECT count(*) FROM spool_free"), 10);
    EXPECT_EQ(raw.integer("SELECT sum(scrub) FROM spool_free"), 0);  // delivered: punched, not scrubbed
    run_a_batch(*s, "next");
    EXPECT_EQ(raw.integer("SELECT count(*) FROM spool_free"), 0);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM spooled_bodies"), 0);
    const long long after = allocated_bytes(tmp.path());
    EXPECT_LT(after, before / 10) << "before " << before << " after " << after;
    EXPECT_EQ(s->queue().body("m3").error(), make_error_code(common::Errc::not_found));
}

TEST(BodySpool, EscrowedOrDeletedPlaintextIsScrubbedDeliveredIsNot) {
    // Table of how a body stops being needed -> whether its range is overwritten before punching.
    struct Row {
        const char* how;
        const char* state_sql;  // run before the body row goes (as the store does)
        int scrub;
    } rows[] = {
        {"delivered", "UPDATE recipients SET state = 'delivered'", 0},
        {"failed", "UPDATE recipients SET state = 'failed'", 0},
        {"escrowed", "UPDATE recipients SET state = 'escrowed'", 1},
        {"deleted", "UPDATE recipients SET state = 'deleted'", 1},
    };
    for (const auto& r : rows) {
        TempDir tmp;
        auto s = test::open_sqlite(tmp.path(), spool_everything());
        ASSERT_TRUE(submit_sync(s->queue(), simple_message("m", std::string(50'000, 's'))));
        RawDb raw(tmp.path() / "mailward.db");
        raw.exec("PRAGMA foreign_keys = ON");
        raw.exec(r.state_sql);
        raw.exec("DELETE FROM bodies WHERE message_id = 'm'");
        EXPECT_EQ(raw.integer("SELECT count(*) FROM spooled_bodies"), 0) << r.how;
        EXPECT_EQ(raw.integer("SELECT count(*) FROM spool_free"), 1) << r.how;
        EXPECT_EQ(raw.integer("SELECT scrub FROM spool_free"), r.scrub) << r.how;
    }
    // The administrator's remove() goes through the same path, scrubbed.
    TempDir tmp;
    auto s = test::open_sqlite(tmp.path(), spool_everything());
    ASSERT_TRUE(submit_sync(s->queue(), simple_message("m", std::string(50'000, 's'))));
    ASSERT_TRUE(s->queue().remove("m"));
    RawDb raw(tmp.path() / "mailward.db");
    EXPECT_EQ(raw.integer("SELECT scrub FROM spool_free"), 1);
    run_a_batch(*s, "next");
    EXPECT_EQ(raw.integer("SELECT count(*) FROM spool_free"), 0);
}

TEST(BodySpool, SegmentsRotateAndUnusedOnesAreSwept) {
    TempDir tmp;
    Options o = spool_everything();
    o.spool_segment_bytes = 64 * 1024;  // two 30 KB bodies per segment
    auto s = test::open_sqlite(tmp.path(), o);
    for (int i = 0; i < 10; ++i)
        ASSERT_TRUE(submit_sync(s->queue(), simple_message("m" + std::to_string(i), std::string(30'000, 'a' + i))));
    EXPECT_EQ(segment_files(tmp.path()).size(), 5u);
    lease_all(*s);
    for (int i = 0; i < 9; ++i) deliver(*s, "m" + std::to_string(i));  // m9 stays queued
    s.reset();                                                         // at the next open the sweep runs
    s = test::open_sqlite(tmp.path(), o);
    auto left = segment_files(tmp.path());
    EXPECT_EQ(left.size(), 1u);  // only m9's segment
    EXPECT_EQ(*s->queue().body("m9"), std::string(30'000, 'j'));
}

TEST(BodySpool, SweepRemovesCrashLeftoversKeepsForeignAndLockedFiles) {
    TempDir tmp;
    { auto s = test::open_sqlite(tmp.path()); }
    const auto spool = tmp.path() / "spool";
    auto touch = [](const std::filesystem::path& p) { std::ofstream(p) << "leftover"; };
    touch(spool / "00000000000000aa.seg");   // unreferenced segment (crash before commit)
    touch(spool / ".new-00000000000000bb");  // half-made segment
    touch(spool / "README");                 // not ours: kept
    touch(spool / "00000000000000cc.seg");   // held by another process
    int held = ::open((spool / "00000000000000cc.seg").c_str(), O_RDWR);
    ASSERT_GE(held, 0);
    ASSERT_EQ(::flock(held, LOCK_EX | LOCK_NB), 0);
    { auto s = test::open_sqlite(tmp.path()); }
    EXPECT_EQ(segment_files(tmp.path()), (std::set<std::string>{"README", "00000000000000cc.seg"}));
    ::close(held);  // the other process is gone
    { auto s = test::open_sqlite(tmp.path()); }
    EXPECT_EQ(segment_files(tmp.path()), (std::set<std::string>{"README"}));
}

TEST(BodySpool, ASecondStoreOnTheSameFilesNeverSweepsTheFirstOnesSegment) {
    TempDir tmp;
    const Options o = spool_everything();
    auto a = test::open_sqlite(tmp.path(), o);
    ASSERT_TRUE(submit_sync(a->queue(), simple_message("a1", std::string(10'000, 'a'))));
    ASSERT_TRUE(a->queue().remove("a1"));       // a's active segment now holds no live body
    auto b = test::open_sqlite(tmp.path(), o);  // its sweep sees a's segment unused, but locked
    EXPECT_EQ(segment_files(tmp.path()).size(), 1u);
    ASSERT_TRUE(submit_sync(a->queue(), simple_message("a2", std::string(10'000, 'b'))));
    EXPECT_EQ(*b->queue().body("a2"), std::string(10'000, 'b'));
}

TEST(BodySpool, MissingOrShortSegmentsAreErrorsNotCrashes) {
    TempDir tmp;
    auto s = test::open_sqlite(tmp.path(), spool_everything());
    ASSERT_TRUE(submit_sync(s->queue(), simple_message("m", std::string(20'000, 'x'))));
    auto files = segment_files(tmp.path());
    ASSERT_EQ(files.size(), 1u);
    const auto seg = tmp.path() / "spool" / *files.begin();
    ASSERT_EQ(::truncate(seg.c_str(), 100), 0);
    EXPECT_EQ(s->queue().body("m").error(), make_error_code(common::Errc::corrupt));
    std::filesystem::remove(seg);
    EXPECT_EQ(s->queue().body("m").error(), make_error_code(common::Errc::not_found));
}

TEST(BodySpool, AppendSyncReadRelease) {
    TempDir tmp;
    auto sp = BodySpool::open(tmp.path() / "spool", 1 << 20);
    ASSERT_TRUE(sp);
    auto& spool = **sp;
    auto r1 = spool.append("first body");
    auto r2 = spool.append(std::string(5000, 'z'));
    ASSERT_TRUE(r1 && r2);
    EXPECT_EQ(r1->segment, r2->segment);
    EXPECT_EQ(r1->start % 4096, 0u);
    EXPECT_EQ(r2->start % 4096, 0u);
    EXPECT_GE(r2->start, r1->start + r1->length);
    ASSERT_TRUE(spool.sync({r1->segment}));
    EXPECT_EQ(*spool.read(*r1), "first body");
    ASSERT_TRUE(spool.release(*r2, true));
    EXPECT_EQ(*spool.read(*r2), std::string(5000, '\0'));  // scrubbed and punched
    ASSERT_TRUE(spool.release(*r2, false));                // twice is harmless
    EXPECT_EQ(*spool.read(*r1), "first body");             // the neighbour is untouched
    spool.settled(r1->segment);
    spool.settled(r2->segment);
    // Its own active segment is never swept, whatever the database says.
    EXPECT_EQ(spool.sweep([](std::int64_t) -> Result<bool> { return false; }), 0u);
}

}  // namespace
}  // namespace mailward::store::sqlite
