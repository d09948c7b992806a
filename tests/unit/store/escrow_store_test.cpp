// The escrow store in SQLite: sealing is atomic with the recipient's change and the notice (and
// refused when the recipient is no longer awaiting escrow), shredding destroys the wrapped key,
// purge removes the ciphertext, one-time codes follow their rules (tries, retirement, lock), sessions
// end, and the audit log is chained and append-only (enforced by the schema).
#include <gtest/gtest.h>

#include <future>

#include "store/store.hpp"
#include "store_test_util.hpp"

using namespace mailward;
using namespace mailward::store;
using namespace mailward::store::test;
using namespace std::chrono_literals;

namespace {

const TimePoint t0 = ms(1'800'000'000'000);

// A chain function any test can recompute: "prev|event|detail".
std::string chain_fn(const std::string& prev, const EscrowAuditEntry& e) {
    return prev + "|" + e.event + "/" + e.detail;
}

struct EscrowStoreTest : ::testing::Test {
    TempDir dir;
    std::unique_ptr<Store> st;
    EscrowStore* es = nullptr;
    void SetUp() override {
        auto s = store::open(config_for(dir.path()));
        ASSERT_TRUE(s) << s.error().message();
        st = std::move(*s);
        es = &st->escrow();
    }
    std::filesystem::path file() const { return dir.path() / "mailward.db"; }

    // Queues a message whose single recipient awaits escrow.
    void queue_awaiting(const std::string& qid) {
        auto m = simple_message(qid);
        m.envelope.recipients[0].state = RcptState::awaiting_escrow;
        ASSERT_TRUE(submit_sync(st->queue(), std::move(m)));
    }
    EscrowRecord record(const std::string& id, const std::string& qid) {
        EscrowRecord r;
        r.id = id;
        r.queue_id = qid;
        r.rcpt_index = 0;
        r.sender = "alice@example.test";
        r.sender_name = "Alice <alice@example.test>";
        r.sender_mode = "tls-or-escrow";
        r.recipient = "bob@example.org";
        r.token_hash = "tok-" + id;
        r.wrapped_key = std::string("KEY\0KEY", 7);
        r.sealed = "SEALED-" + id;
        r.created = t0;
        r.expires = t0 + 24h;
        return r;
    }
    Result<void> create(EscrowRecord rec, const std::string& notice_id) {
        EscrowAuditEntry first;
        first.at = t0;
        first.event = "sealed";
        first.detail = "d";
        auto notice = simple_message(notice_id, "Subject: notice\r\n\r\nlink\r\n");
        std::promise<Result<void>> p;
        auto f = p.get_future();
        es->create(std::move(rec), std::move(first), std::move(notice), chain_fn,
                   [&p](Result<void> r) { p.set_value(r); });
        return f.get();
    }
    EscrowAuditEntry entry(std::string event = "") {
        EscrowAuditEntry e;
        e.at = t0;
        e.event = std::move(event);
        return e;
    }
};

TEST_F(EscrowStoreTest, SealingIsAtomicWithTheRecipientAndTheNotice) {
    queue_awaiting("Q1");
    auto waiting = es->awaiting_seal(10);
    ASSERT_TRUE(waiting);
    ASSERT_EQ(waiting->size(), 1u);
    EXPECT_EQ((*waiting)[0].id, "Q1");

    ASSERT_TRUE(create(record("e1", "Q1"), "N1"));
    auto env = st->queue().envelope("Q1");
    ASSERT_TRUE(env);
    EXPECT_EQ(env->recipients[0].state, RcptState::escrowed);
    EXPECT_NE(env->recipients[0].last_error.find("e1"), std::string::npos);
    EXPECT_FALSE(st->queue().body("Q1")) << "the queued plaintext goes once nothing needs it";
    EXPECT_TRUE(st->queue().envelope("N1")) << "the notice is queued";
    ASSERT_TRUE(es->awaiting_seal(10));
    EXPECT_TRUE(es->awaiting_seal(10)->empty());

    auto rec = es->get("e1");
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->wrapped_key, std::string("KEY\0KEY", 7));
    EXPECT_EQ(rec->sealed, "SEALED-e1");
    EXPECT_EQ(rec->state, EscrowState::active);
    auto by_token = es->find_by_token("tok-e1");
    ASSERT_TRUE(by_token);
    EXPECT_EQ(by_token->id, "e1");
    EXPECT_EQ(es->find_by_token("tok-other").error(), common::Errc::not_found);

    // A second seal of the same recipient is refused and leaves nothing behind (no second notice).
    auto again = create(record("e2", "Q1"), "N2");
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error(), common::Errc::already_exists);
    EXPECT_FALSE(es->get("e2"));
    EXPECT_FALSE(st->queue().envelope("N2"));
}

TEST_F(EscrowStoreTest, ShredDestroysTheKeyAndPurgeTheCiphertext) {
    queue_awaiting("Q1");
    ASSERT_TRUE(create(record("e1", "Q1"), "N1"));
    auto e = entry("purged");
    EXPECT_EQ(es->purge("e1", t0, e, chain_fn).error(), common::Errc::already_exists) << "active: not purgeable";

    ASSERT_TRUE(es->shred("e1", EscrowState::revoked, t0 + 1h, entry("revoked"), chain_fn));
    auto rec = es->get("e1");
    ASSERT_TRUE(rec);
    EXPECT_TRUE(rec->wrapped_key.empty());
    EXPECT_EQ(rec->state, EscrowState::revoked);
    ASSERT_TRUE(rec->ended_at);
    EXPECT_EQ(*rec->ended_at, t0 + 1h);
    EXPECT_EQ(rec->sealed, "SEALED-e1");
    EXPECT_EQ(es->shred("e1", EscrowState::expired, t0, entry("expired"), chain_fn).error(),
              common::Errc::already_exists);
    {
        RawDb raw(file());
        EXPECT_EQ(raw.integer("SELECT count(*) FROM escrow_messages WHERE wrapped_key IS NULL"), 1);
    }

    auto purgeable = es->purgeable_ids(t0 + 2h);
    ASSERT_TRUE(purgeable);
    ASSERT_EQ(purgeable->size(), 1u);
    EXPECT_TRUE(es->purgeable_ids(t0 + 1h)->empty()) << "ended_before is exclusive";
    ASSERT_TRUE(es->purge("e1", t0 + 2h, entry("purged"), chain_fn));
    rec = es->get("e1");
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->state, EscrowState::purged);
    EXPECT_TRUE(rec->sealed.empty());

    auto rows = es->audit("e1");
    ASSERT_TRUE(rows);
    ASSERT_EQ(rows->size(), 4u);
    EXPECT_EQ((*rows)[0].event, "sealed");
    EXPECT_EQ((*rows)[1].event, "notice_sent");
    EXPECT_EQ((*rows)[1].detail, "notice N1 queued for delivery to bob@example.org");
    EXPECT_EQ((*rows)[2].event, "revoked");
    EXPECT_EQ((*rows)[3].event, "purged");
    EXPECT_EQ((*rows)[2].prev_hash, (*rows)[1].hash);
    EXPECT_EQ((*rows)[3].hash, (*rows)[2].hash + "|purged/");
}

TEST_F(EscrowStoreTest, ExpiredIdsAreTheActiveOnesPastExpiry) {
    queue_awaiting("Q1");
    queue_awaiting("Q2");
    ASSERT_TRUE(create(record("e1", "Q1"), "N1"));
    auto r2 = record("e2", "Q2");
    r2.expires = t0 + 48h;
    ASSERT_TRUE(create(std::move(r2), "N2"));
    struct Row {
        TimePoint now;
        std::vector<std::string> want;
    } rows[] = {{t0, {}}, {t0 + 24h - 1ms, {}}, {t0 + 24h, {"e1"}}, {t0 + 72h, {"e1", "e2"}}};
    for (const auto& row : rows) {
        auto got = es->expired_ids(row.now);
        ASSERT_TRUE(got);
        EXPECT_EQ(*got, row.want);
    }
    auto list = es->list(false);
    ASSERT_TRUE(list);
    EXPECT_EQ(list->size(), 2u);
}

TEST_F(EscrowStoreTest, CodesFollowTheirRules) {
    queue_awaiting("Q1");
    ASSERT_TRUE(create(record("e1", "Q1"), "N1"));
    CodeRules rules;
    rules.max_tries_per_code = 3;
    rules.lock_after_failures = 5;
    rules.lock_for = 60min;

    auto check = [&](std::string code, TimePoint now) {
        auto r = es->check_code("e1", code, now, rules, entry(), chain_fn);
        EXPECT_TRUE(r) << r.error().message();
        return r ? *r : CodeCheck::wrong;
    };
    EXPECT_EQ(check("h1", t0), CodeCheck::no_code);

    ASSERT_TRUE(es->add_code("e1", "h1", false, t0, t0 + 15min, simple_message("C1"), entry("code_sent"), chain_fn));
    EXPECT_TRUE(st->queue().envelope("C1")) << "the code mail is queued with the code";
    EXPECT_EQ(*es->codes_sent_since("e1", t0), 1);
    EXPECT_EQ(*es->codes_sent_since("e1", t0 + 1ms), 0);

    // A table: each row is one try, in order.
    struct Try {
        std::string code;
        TimePoint at;
        CodeCheck want;
    } tries[] = {
        {"h1", t0 + 15min, CodeCheck::no_code},  // expired (expires is exclusive)
        {"bad", t0 + 1min, CodeCheck::wrong},    {"bad", t0 + 1min, CodeCheck::wrong},
        {"h1x", t0 + 1min, CodeCheck::wrong},     // third wrong try
        {"h1", t0 + 1min, CodeCheck::exhausted},  // the right code, but its tries are used
    };
    for (const auto& t : tries) EXPECT_EQ(check(t.code, t.at), t.want) << t.code;

    // A new code retires the old one; the right code logs in once and resets the failures.
    ASSERT_TRUE(
        es->add_code("e1", "h2", false, t0 + 2min, t0 + 17min, simple_message("C2"), entry("code_sent"), chain_fn));
    EXPECT_EQ(check("h1", t0 + 2min), CodeCheck::wrong) << "the old code is retired";
    EXPECT_EQ(es->get("e1")->failed_logins, 4);
    EXPECT_EQ(check("h2", t0 + 2min), CodeCheck::accepted);
    EXPECT_EQ(es->get("e1")->failed_logins, 0);
    EXPECT_EQ(check("h2", t0 + 2min), CodeCheck::no_code) << "single use";

    // Five wrong codes in a row (across codes) lock the message for lock_for.
    ASSERT_TRUE(
        es->add_code("e1", "h3", false, t0 + 3min, t0 + 18min, simple_message("C3"), entry("code_sent"), chain_fn));
    EXPECT_EQ(check("x", t0 + 3min), CodeCheck::wrong);
    EXPECT_EQ(check("x", t0 + 3min), CodeCheck::wrong);
    EXPECT_EQ(check("x", t0 + 3min), CodeCheck::wrong);
    ASSERT_TRUE(
        es->add_code("e1", "h4", false, t0 + 4min, t0 + 19min, simple_message("C4"), entry("code_sent"), chain_fn));
    EXPECT_EQ(check("x", t0 + 4min), CodeCheck::wrong);
    EXPECT_EQ(check("x", t0 + 4min), CodeCheck::locked);  // the fifth locks, and says so
    EXPECT_TRUE(es->get("e1")->locked_until);
    EXPECT_EQ(check("h4", t0 + 5min), CodeCheck::locked) << "even the right code, while locked";
    EXPECT_EQ(check("h4", t0 + 65min), CodeCheck::no_code) << "the lock is over, but h4 has expired";
    ASSERT_TRUE(
        es->add_code("e1", "h5", false, t0 + 66min, t0 + 81min, simple_message("C5"), entry("code_sent"), chain_fn));
    EXPECT_EQ(check("h5", t0 + 66min), CodeCheck::accepted);

    auto rows = es->audit("e1");
    ASSERT_TRUE(rows);
    std::size_t locked = 0, failed = 0, accepted = 0;
    for (const auto& r : *rows) {
        locked += r.event == "locked";
        failed += r.event == "code_failed";
        accepted += r.event == "code_accepted";
    }
    EXPECT_EQ(locked, 1u);
    EXPECT_EQ(failed, 8u);
    EXPECT_EQ(accepted, 2u);
}

TEST_F(EscrowStoreTest, SessionsEndAndRevocationEndsThemAll) {
    queue_awaiting("Q1");
    ASSERT_TRUE(create(record("e1", "Q1"), "N1"));
    EscrowSession s{"sid1", "e1", "csrf1", t0, t0, std::nullopt};
    ASSERT_TRUE(es->create_session(s));
    EXPECT_EQ(es->create_session(s).error(), common::Errc::already_exists);
    EXPECT_EQ(es->create_session(EscrowSession{"", "e1", "c", t0, t0, {}}).error(), common::Errc::invalid_argument);
    ASSERT_TRUE(es->touch_session("sid1", t0 + 5min));
    EXPECT_EQ(es->session("sid1")->last_seen, t0 + 5min);
    ASSERT_TRUE(es->create_session(EscrowSession{"sid2", "e1", "csrf2", t0, t0, {}}));
    ASSERT_TRUE(es->end_session("sid1", t0 + 6min));
    EXPECT_TRUE(es->session("sid1")->ended_at);
    EXPECT_EQ(es->touch_session("sid1", t0 + 7min).error(), common::Errc::not_found);
    EXPECT_FALSE(es->session("sid2")->ended_at);
    ASSERT_TRUE(es->shred("e1", EscrowState::revoked, t0 + 8min, entry("revoked"), chain_fn));
    EXPECT_TRUE(es->session("sid2")->ended_at) << "revocation ends every session";
    EXPECT_EQ(es->session("nope").error(), common::Errc::not_found);
}

TEST_F(EscrowStoreTest, AuditIsChainedAndAppendOnly) {
    queue_awaiting("Q1");
    ASSERT_TRUE(create(record("e1", "Q1"), "N1"));
    auto e = entry("viewed");
    e.escrow_id = "e1";
    e.detail = "x";
    ASSERT_TRUE(es->append_audit(e, chain_fn));
    EXPECT_EQ(es->append_audit(entry(""), chain_fn).error(), common::Errc::invalid_argument);
    auto rows = es->audit("e1");
    ASSERT_TRUE(rows);
    ASSERT_EQ(rows->size(), 3u);
    EXPECT_EQ((*rows)[0].prev_hash, "");
    EXPECT_EQ((*rows)[0].hash, "|sealed/d");
    EXPECT_EQ((*rows)[2].hash, (*rows)[1].hash + "|viewed/x");
    RawDb raw(file());
    EXPECT_THROW(raw.exec("UPDATE escrow_audit SET detail = 'forged'"), std::runtime_error);
    EXPECT_THROW(raw.exec("DELETE FROM escrow_audit"), std::runtime_error);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM escrow_audit"), 3);
}

}  // namespace
