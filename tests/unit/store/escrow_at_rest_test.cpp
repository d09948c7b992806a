// Escrow at rest (issue 11, item 6): once a message is sealed its plaintext body, and once a
// message is shredded its wrapped key, is in no byte of mailward.db, mailward.db-wal,
// mailward.db-shm or the spool's segments - for bodies inline in a b-tree cell (1 KiB), in
// overflow pages (5 and 7.9 KiB) and in the spool (9 and 100 KiB). Each scan first finds what it
// looks for while it is still there, so a count of zero afterwards means something.
#include <gtest/gtest.h>
#include <sodium.h>

#include <chrono>
#include <fstream>
#include <future>
#include <iterator>
#include <thread>

#include "store/store.hpp"
#include "store_test_util.hpp"

using namespace mailward;
using namespace mailward::store;
using namespace mailward::store::test;
using namespace std::chrono_literals;

namespace {

std::string random_hex(std::size_t bytes) {
    std::string raw(bytes, '\0');
    randombytes_buf(raw.data(), raw.size());
    std::string hex(bytes * 2 + 1, '\0');
    sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
    hex.pop_back();
    return hex;
}

// Occurrences of needle in every file under dir (the database, its WAL and shm, the spool).
std::size_t occurrences(const std::filesystem::path& dir, const std::string& needle) {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
        if (!e.is_regular_file()) continue;
        std::ifstream in(e.path(), std::ios::binary);
        std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        for (auto at = data.find(needle); at != std::string::npos; at = data.find(needle, at + 1)) ++n;
    }
    return n;
}

// Polls until no file under dir holds needle (the writer scrubs after the completion has run).
std::size_t occurrences_after_scrub(const std::filesystem::path& dir, const std::string& needle) {
    std::size_t n = 0;
    for (int i = 0; i < 100; ++i) {
        if ((n = occurrences(dir, needle)) == 0) break;
        std::this_thread::sleep_for(50ms);
    }
    return n;
}

// A body of exactly size octets with the marker throughout (so any page of it, head or tail, holds one).
std::string body_with(const std::string& marker, std::size_t size) {
    std::string b = "Subject: " + marker + "\r\n\r\n";
    while (b.size() < size) b += marker + " lorem ipsum dolor sit amet\r\n";
    b.resize(size);
    return b;
}

std::string chain_fn(const std::string& prev, const EscrowAuditEntry& e) { return prev + "|" + e.event; }

struct Case {
    const char* where;
    std::size_t size;
};

TEST(EscrowAtRest, SealedPlaintextAndShreddedKeysLeaveNoRemnant) {
    ASSERT_GE(sodium_init(), 0);
    TempDir dir;
    auto st = open_sqlite(dir.path());
    ASSERT_TRUE(st);
    const Case cases[] = {
        {"b-tree cell", 1024}, {"overflow pages", 5 * 1024}, {"overflow pages, just under the spool", 8090},
        {"spool", 9 * 1024},   {"spool, large", 100 * 1024},
    };
    const TimePoint t0 = ms(1'800'000'000'000);
    // Some traffic around the escrowed messages, as in a live queue.
    for (int i = 0; i < 20; ++i)
        ASSERT_TRUE(submit_sync(st->queue(), simple_message("OTHER" + std::to_string(i), body_with("other", 3000))));

    std::vector<std::string> markers, keys, ids;
    for (std::size_t i = 0; i < std::size(cases); ++i) {
        const std::string qid = "Q" + std::to_string(i);
        markers.push_back("PLAINMARK" + random_hex(8));
        auto m = simple_message(qid, body_with(markers.back(), cases[i].size));
        m.envelope.recipients[0].state = RcptState::awaiting_escrow;
        ASSERT_TRUE(submit_sync(st->queue(), std::move(m)));
        EXPECT_GT(occurrences(dir.path(), markers.back()), 0u)
            << cases[i].where << ": the scan finds the queued plaintext before sealing";
    }
    for (std::size_t i = 0; i < std::size(cases); ++i) {
        EscrowRecord r;
        r.id = "e" + std::to_string(i);
        r.queue_id = "Q" + std::to_string(i);
        r.sender = "alice@example.test";
        // Long text fields: the message row overflows, as a real one with its ciphertext does.
        r.sender_name = std::string(600, 'A');
        r.sender_mode = "tls-or-escrow";
        r.recipient = "bob@example.org";
        r.token_hash = random_hex(32);
        keys.push_back("WRAPPEDKEY" + random_hex(31));  // 72 octets, as a real wrapped key
        r.wrapped_key = keys.back();
        r.sealed = std::string(cases[i].size, 'C');
        r.created = t0;
        r.expires = t0 + 24h;
        EscrowAuditEntry first;
        first.at = t0;
        first.event = "sealed";
        std::promise<Result<void>> p;
        auto f = p.get_future();
        st->escrow().create(std::move(r), first, simple_message("N" + std::to_string(i)), chain_fn,
                            [&p](Result<void> res) { p.set_value(res); });
        ASSERT_TRUE(f.get());
        ids.push_back("e" + std::to_string(i));
    }
    for (std::size_t i = 0; i < std::size(cases); ++i) {
        EXPECT_EQ(occurrences_after_scrub(dir.path(), markers[i]), 0u)
            << cases[i].where << ": plaintext left after sealing";
        EXPECT_GT(occurrences(dir.path(), keys[i]), 0u) << "the scan finds the key while it is live";
    }
    for (std::size_t i = 0; i < ids.size(); ++i) {
        EscrowAuditEntry e;
        e.at = t0 + 1h;
        e.event = "revoked";
        ASSERT_TRUE(
            st->escrow().shred(ids[i], i % 2 ? EscrowState::expired : EscrowState::revoked, t0 + 1h, e, chain_fn));
    }
    for (std::size_t i = 0; i < ids.size(); ++i)
        EXPECT_EQ(occurrences_after_scrub(dir.path(), keys[i]), 0u)
            << cases[i].where << ": the key left after shredding";
    // Purging (the ciphertext) keeps it so.
    for (const auto& id : ids) {
        EscrowAuditEntry e;
        e.event = "purged";
        ASSERT_TRUE(st->escrow().purge(id, t0 + 2h, e, chain_fn));
    }
    st->close();  // the writer's last scrub pass; the connections stay open (no implicit checkpoint)
    for (std::size_t i = 0; i < ids.size(); ++i) {
        EXPECT_EQ(occurrences(dir.path(), keys[i]), 0u) << cases[i].where;
        EXPECT_EQ(occurrences(dir.path(), markers[i]), 0u) << cases[i].where;
    }
    EXPECT_EQ(std::filesystem::file_size(dir.path() / "mailward.db-wal"), 0u) << "the WAL is truncated";
}

}  // namespace
