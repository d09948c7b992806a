// Escrow on PostgreSQL with several nodes (two PgStore objects on one database): two nodes racing to
// seal one recipient - exactly one wins, one notice is queued; concurrent audit appends and code
// checks from both keep one unbroken chain and count every wrong code; any node reads and serves a
// message the other sealed; after a shred (and its VACUUM) the key's bytes are in no tuple of
// escrow_keys; the key holder's reader cannot write.
#include <gtest/gtest.h>
#include <sodium.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <latch>
#include <mutex>
#include <thread>

#include "pg_test_util.hpp"
#include "store/postgres/escrow_store.hpp"
#include "store/postgres/pg_store.hpp"
#include "store_test_util.hpp"

using namespace mailward;
using namespace mailward::store;
using namespace mailward::store::test;
using namespace std::chrono_literals;

namespace {

const TimePoint t0 = ms(1'800'000'000'000);

std::string hex(const std::string& raw) {
    std::string out(raw.size() * 2 + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
    out.pop_back();
    return out;
}

// A real chain: hex(BLAKE2b(prev | event | detail)), fixed length, so a fork or a gap shows.
std::string chain_fn(const std::string& prev, const EscrowAuditEntry& e) {
    const std::string in = prev + "\n" + e.event + "\n" + e.detail;
    unsigned char h[32];
    crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(in.data()), in.size(), nullptr, 0);
    return hex(std::string(reinterpret_cast<const char*>(h), sizeof h));
}

std::string random_bytes(std::size_t n) {
    std::string s(n, '\0');
    randombytes_buf(s.data(), s.size());
    return s;
}

EscrowRecord record(const std::string& id, const std::string& qid, std::string key = "KEY") {
    EscrowRecord r;
    r.id = id;
    r.queue_id = qid;
    r.sender = "alice@example.test";
    r.recipient = "bob@example.org";
    r.token_hash = "tok-" + id;
    r.wrapped_key = std::move(key);
    r.sealed = "SEALED-" + id;
    r.created = t0;
    r.expires = t0 + 24h;
    return r;
}

EscrowAuditEntry entry(std::string event, std::string detail = "") {
    EscrowAuditEntry e;
    e.at = t0;
    e.event = std::move(event);
    e.detail = std::move(detail);
    return e;
}

Result<void> seal(EscrowStore& es, EscrowRecord rec, const std::string& notice_id) {
    std::promise<Result<void>> p;
    auto f = p.get_future();
    es.create(std::move(rec), entry("sealed", "d"), simple_message(notice_id), chain_fn,
              [&p](Result<void> r) { p.set_value(r); });
    return f.get();
}

std::size_t occurrences(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
    return n;
}

struct PgEscrowTest : PgTest {
    void queue_awaiting(postgres::PgStore& s, const std::string& qid) {
        auto m = simple_message(qid);
        m.envelope.recipients[0].state = RcptState::awaiting_escrow;
        ASSERT_TRUE(submit_sync(s.queue(), std::move(m)));
    }
    std::string count(const std::string& sql, const std::vector<std::string>& params = {}) {
        return db->query(sql, params).value_or("?");
    }
};

}  // namespace

// Both nodes seal the same recipient at the same moment, twenty times: each time exactly one seal
// commits, the other is refused with already_exists and leaves nothing (no record, no notice).
TEST_F(PgEscrowTest, TwoNodesRacingToSealOneRecipientExactlyOneWins) {
    auto a = node();
    auto b = node();
    ASSERT_TRUE(a && b);
    constexpr int kRounds = 20;
    for (int i = 0; i < kRounds; ++i) queue_awaiting(*a, "Q" + std::to_string(i));
    int won_a = 0, won_b = 0;
    for (int i = 0; i < kRounds; ++i) {
        const std::string q = "Q" + std::to_string(i);
        std::latch go(2);
        Result<void> ra, rb;
        std::thread ta([&] {
            go.arrive_and_wait();
            ra = seal(a->escrow(), record("a" + q, q), "NA" + q);
        });
        std::thread tb([&] {
            go.arrive_and_wait();
            rb = seal(b->escrow(), record("b" + q, q), "NB" + q);
        });
        ta.join();
        tb.join();
        ASSERT_NE(bool(ra), bool(rb)) << q << ": exactly one seal commits";
        const auto& lost = ra ? rb : ra;
        EXPECT_EQ(lost.error(), common::Errc::already_exists) << q;
        (ra ? won_a : won_b)++;
        EXPECT_EQ(count("SELECT count(*) FROM escrow_messages WHERE queue_id = $1", {q}), "1") << q;
        EXPECT_EQ(count("SELECT count(*) FROM messages WHERE id IN ($1, $2)", {"NA" + q, "NB" + q}), "1")
            << q << ": one notice";
        EXPECT_EQ(count("SELECT count(*) FROM escrow_audit WHERE escrow_id IN ($1, $2)", {"a" + q, "b" + q}), "2") << q;
        EXPECT_EQ(count("SELECT state FROM recipients WHERE message_id = $1", {q}), "escrowed") << q;
        EXPECT_EQ(count("SELECT count(*) FROM bodies WHERE message_id = $1", {q}), "0") << q << ": plaintext gone";
    }
    EXPECT_EQ(won_a + won_b, kRounds);
    std::printf("seal races: node A won %d, node B won %d\n", won_a, won_b);
}

// Two recipients of one message sealed by two nodes at once: the plaintext body is deleted by
// whichever commits second (the queue row is locked), never left behind by both.
TEST_F(PgEscrowTest, TwoNodesSealingTwoRecipientsOfOneMessageDeleteTheBody) {
    auto a = node();
    auto b = node();
    ASSERT_TRUE(a && b);
    for (int i = 0; i < 10; ++i) {
        const std::string q = "M" + std::to_string(i);
        auto m = simple_message(q);
        m.envelope.recipients[0].state = RcptState::awaiting_escrow;
        Recipient r2;
        r2.address = "carol@example.org";
        r2.state = RcptState::awaiting_escrow;
        m.envelope.recipients.push_back(r2);
        ASSERT_TRUE(submit_sync(a->queue(), std::move(m)));
        auto r1 = record("x" + q, q);
        auto rec2 = record("y" + q, q);
        rec2.rcpt_index = 1;
        std::latch go(2);
        Result<void> ra, rb;
        std::thread ta([&] {
            go.arrive_and_wait();
            ra = seal(a->escrow(), r1, "NX" + q);
        });
        std::thread tb([&] {
            go.arrive_and_wait();
            rb = seal(b->escrow(), rec2, "NY" + q);
        });
        ta.join();
        tb.join();
        ASSERT_TRUE(ra && rb) << q;
        EXPECT_EQ(count("SELECT count(*) FROM bodies WHERE message_id = $1", {q}), "0") << q;
    }
}

// Both nodes, two threads each, append audit rows to one message and check wrong codes against it
// at once: one chain (each row's prev_hash is the previous row's hash, recomputable), every row
// handed to its node's sink once with its seq, and no wrong code lost from the counters.
TEST_F(PgEscrowTest, ConcurrentAppendsFromTwoNodesKeepOneChain) {
    auto a = node();
    auto b = node();
    ASSERT_TRUE(a && b);
    queue_awaiting(*a, "Q1");
    ASSERT_TRUE(seal(a->escrow(), record("e1", "Q1"), "N1"));
    ASSERT_TRUE(
        b->escrow().add_code("e1", "right", false, t0, t0 + 1h, simple_message("C1"), entry("code_sent"), chain_fn));
    std::mutex sunk_mu;
    std::vector<EscrowAuditEntry> sunk;
    auto sink = [&](const std::vector<EscrowAuditEntry>& rows) {
        std::lock_guard lk(sunk_mu);
        sunk.insert(sunk.end(), rows.begin(), rows.end());
    };
    a->escrow().set_audit_sink(sink);
    b->escrow().set_audit_sink(sink);
    CodeRules rules;
    rules.max_tries_per_code = 1000;
    rules.lock_after_failures = 1000;
    rules.max_failures = 1000;

    constexpr int kPerThread = 25;
    std::latch go(4);
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        EscrowStore& es = (t % 2 ? b : a)->escrow();
        threads.emplace_back([&, t, &es = es] {
            go.arrive_and_wait();
            for (int i = 0; i < kPerThread; ++i) {
                bool ok = false;
                if (t < 2) {
                    auto e = entry("viewed", "t" + std::to_string(t) + " #" + std::to_string(i));
                    e.escrow_id = "e1";
                    ok = bool(es.append_audit(e, chain_fn));
                } else {
                    auto r = es.check_code("e1", "wrong", t0 + 1min, rules, EscrowAuditEntry{}, chain_fn);
                    ok = r && *r == CodeCheck::wrong;
                }
                if (!ok) ++failures;
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);

    auto rows = a->escrow().audit("e1");
    ASSERT_TRUE(rows);
    ASSERT_EQ(rows->size(), 3u + 4 * kPerThread);  // sealed, notice_sent, code_sent, then the threads'
    for (std::size_t i = 0; i < rows->size(); ++i) {
        const auto& r = (*rows)[i];
        EXPECT_EQ(r.prev_hash, i == 0 ? std::string() : (*rows)[i - 1].hash) << "row " << i;
        EXPECT_EQ(r.hash, chain_fn(r.prev_hash, r)) << "row " << i;
        if (i > 0) {
            EXPECT_GT(r.seq, (*rows)[i - 1].seq);
        }
    }
    auto rec = b->escrow().get("e1");
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->total_failures, 2 * kPerThread) << "no wrong code lost between the nodes";
    std::lock_guard lk(sunk_mu);
    EXPECT_EQ(sunk.size(), 4u * kPerThread) << "each of the threads' rows, once";
    for (const auto& s : sunk) {
        EXPECT_GT(s.seq, 0);
        EXPECT_EQ(s.hash, chain_fn(s.prev_hash, s));
    }
}

// A message sealed through node A is served by node B: found by its token, its session read, its
// code checked, and revoked there; node A sees the revocation.
TEST_F(PgEscrowTest, AnyNodeServesAMessageAnotherSealed) {
    auto a = node();
    auto b = node();
    ASSERT_TRUE(a && b);
    queue_awaiting(*a, "Q1");
    ASSERT_TRUE(seal(a->escrow(), record("e1", "Q1", "KEY-e1"), "N1"));
    auto found = b->escrow().find_by_token("tok-e1");
    ASSERT_TRUE(found);
    EXPECT_EQ(found->id, "e1");
    EXPECT_EQ(found->wrapped_key, "KEY-e1");
    EXPECT_EQ(found->sealed, "SEALED-e1");
    ASSERT_TRUE(
        a->escrow().add_code("e1", "h1", false, t0, t0 + 15min, simple_message("C1"), entry("code_sent"), chain_fn));
    EXPECT_EQ(*b->escrow().check_code("e1", "h1", t0 + 1min, CodeRules{}, EscrowAuditEntry{}, chain_fn),
              CodeCheck::accepted);
    ASSERT_TRUE(b->escrow().create_session(EscrowSession{"sid", "e1", "csrf", t0, t0, std::nullopt}));
    auto s = a->escrow().session("sid");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->csrf, "csrf");
    ASSERT_TRUE(a->escrow().touch_session("sid", t0 + 2min));
    EXPECT_EQ(b->escrow().session("sid")->last_seen, t0 + 2min);
    ASSERT_TRUE(b->escrow().shred("e1", EscrowState::revoked, t0 + 3min, entry("revoked"), chain_fn));
    auto rec = a->escrow().get("e1");
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->state, EscrowState::revoked);
    EXPECT_TRUE(rec->wrapped_key.empty());
    EXPECT_TRUE(a->escrow().session("sid")->ended_at);
    EXPECT_EQ(a->escrow().shred("e1", EscrowState::expired, t0, entry("expired"), chain_fn).error(),
              common::Errc::already_exists);
}

// After a shred commits (and its VACUUM ran), the key's bytes are not readable through SQL and are
// in no tuple of the table, live or dead (pageinspect lists every line pointer's data). A key
// deleted without VACUUM shows that the check finds a dead tuple's bytes. What VACUUM does not
// remove - the bytes may stay in the page's free space until the space is reused, and in WAL - is
// in docs/design.md; the heap file is checked only after the operator's VACUUM FULL it describes.
TEST_F(PgEscrowTest, ShredRemovesTheKeyFromEveryTuple) {
    auto a = node();
    ASSERT_TRUE(a);
    ASSERT_TRUE(db->query("CREATE EXTENSION IF NOT EXISTS pageinspect"));
    const std::string key = random_bytes(48), other = random_bytes(48), control = random_bytes(48);
    for (const char* q : {"Q1", "Q2", "Q3"}) queue_awaiting(*a, q);
    ASSERT_TRUE(seal(a->escrow(), record("e1", "Q1", key), "N1"));
    ASSERT_TRUE(seal(a->escrow(), record("e2", "Q2", other), "N2"));  // a live key on the same page
    ASSERT_TRUE(seal(a->escrow(), record("e3", "Q3", control), "N3"));

    const std::string in_sql = "SELECT count(*) FROM escrow_keys WHERE wrapped_key = decode($1, 'hex')";
    // Every tuple of every page, dead ones included (t_data is NULL once the line pointer is unused).
    const std::string in_tuples =
        "SELECT count(*) FROM generate_series(0, pg_relation_size('escrow_keys') / current_setting('block_size')::int"
        " - 1) AS blk, heap_page_items(get_raw_page('escrow_keys', blk::int)) AS t"
        " WHERE position(decode($1, 'hex') IN t.t_data) > 0";
    EXPECT_EQ(count(in_sql, {hex(key)}), "1");
    EXPECT_EQ(count(in_tuples, {hex(key)}), "1");

    // The control: deleted without VACUUM, its dead tuple still holds the key.
    ASSERT_TRUE(db->query("DELETE FROM escrow_keys WHERE escrow_id = 'e3'"));
    EXPECT_EQ(count(in_sql, {hex(control)}), "0");
    EXPECT_EQ(count(in_tuples, {hex(control)}), "1") << "the check sees a dead tuple's bytes";

    ASSERT_TRUE(a->escrow().shred("e1", EscrowState::revoked, t0 + 1h, entry("revoked"), chain_fn));
    EXPECT_EQ(count(in_sql, {hex(key)}), "0");
    EXPECT_EQ(count(in_tuples, {hex(key)}), "0") << "the shredded key's dead tuple survived the shred's VACUUM";
    EXPECT_EQ(count(in_tuples, {hex(control)}), "0") << "the VACUUM covers the whole table";
    EXPECT_EQ(count(in_sql, {hex(other)}), "1") << "the other message's key is untouched";
    EXPECT_EQ(a->escrow().get("e2")->wrapped_key, other);

    // The heap file, after the operator's VACUUM FULL (a new file): readable only where the test
    // runs as the server's user or root.
    ASSERT_TRUE(db->query("VACUUM FULL escrow_keys"));
    ASSERT_TRUE(db->query("CHECKPOINT"));
    auto path = db->query("SELECT current_setting('data_directory') || '/' || pg_relation_filepath('escrow_keys')");
    ASSERT_TRUE(path);
    std::ifstream in(*path, std::ios::binary);
    if (!in) GTEST_SKIP() << *path << " is not readable here: the heap file is not checked";
    const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(occurrences(file, other), 1u) << "the scan finds the live key";
    EXPECT_EQ(occurrences(file, key), 0u);
    EXPECT_EQ(occurrences(file, control), 0u);
}

// The key holder's reader reads what a node sealed, and its connection cannot write.
TEST_F(PgEscrowTest, TheEscrowReaderReadsAndCannotWrite) {
    auto a = node();
    ASSERT_TRUE(a);
    queue_awaiting(*a, "Q1");
    ASSERT_TRUE(seal(a->escrow(), record("e1", "Q1", "KEY-e1"), "N1"));
    ASSERT_TRUE(a->escrow().create_session(EscrowSession{"sid", "e1", "csrf", t0, t0, std::nullopt}));

    auto reader = postgres::open_escrow_reader(db->dsn());
    ASSERT_TRUE(reader) << reader.error().message();
    auto rec = (*reader)->get("e1");
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->wrapped_key, "KEY-e1");
    EXPECT_EQ((*reader)->session("sid")->escrow_id, "e1");
    EXPECT_EQ((*reader)->get("nope").error(), common::Errc::not_found);

    // The same connection the reader opens: a write through it fails, inside or outside a transaction.
    auto c = postgres::open_read_only(db->dsn());
    ASSERT_TRUE(c);
    EXPECT_FALSE(
        c->exec("INSERT INTO escrow_sessions (id_hash, escrow_id, csrf, created, last_seen)"
                " VALUES ('forged', 'e1', 'x', 0, 0)"));
    EXPECT_FALSE(c->exec("DELETE FROM escrow_keys"));
    ASSERT_TRUE(c->begin("BEGIN"));
    EXPECT_FALSE(c->exec("UPDATE escrow_messages SET state = 'revoked'"));
    c->rollback();
    EXPECT_EQ(count("SELECT count(*) FROM escrow_sessions"), "1");
    EXPECT_EQ(count("SELECT count(*) FROM escrow_keys"), "1");

    // Read-only also as the connection's own setting (what a reconnect restores, and what RESET
    // goes back to), with a key-value DSN and with a URI.
    auto port = db->query("SELECT current_setting('port')");
    auto name = db->query("SELECT current_database()");
    ASSERT_TRUE(port && name);
    for (const std::string& dsn :
         {db->dsn(), "postgresql://mailward_test@127.0.0.1:" + *port + "/" + *name + "?connect_timeout=10"}) {
        auto ro = postgres::open_read_only(dsn);
        ASSERT_TRUE(ro) << dsn;
        ASSERT_TRUE(ro->command("RESET default_transaction_read_only"));
        auto v = ro->exec("SHOW default_transaction_read_only");
        ASSERT_TRUE(v);
        EXPECT_EQ(v->text(0, 0), "on") << dsn;
        EXPECT_FALSE(ro->exec("DELETE FROM escrow_sessions")) << dsn;
    }
}
