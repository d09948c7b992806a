// The escrow store on every backend (backend.hpp): sealing is atomic with the recipient's change and
// the notice (and refused when the recipient is no longer awaiting escrow), shredding destroys the
// wrapped key, purge removes the ciphertext, one-time codes follow their rules (tries, retirement,
// lock; lockouts that double, the cap, strong codes), sessions end, and the audit log is chained and
// append-only (enforced by the schema). store_test runs it on SQLite, store_pg_test on PostgreSQL.
#include <gtest/gtest.h>

#include "backend.hpp"
#include "common/gcc_wrestrict.hpp"

using namespace mailward;
using namespace mailward::store;
using namespace mailward::store::test;
using namespace std::chrono_literals;

TEST_P(EscrowContract, SealingIsAtomicWithTheRecipientAndTheNotice) {
    queue_awaiting("Q1");
    auto waiting = es().awaiting_seal(10);
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
    ASSERT_TRUE(es().awaiting_seal(10));
    EXPECT_TRUE(es().awaiting_seal(10)->empty());

    auto rec = es().get("e1");
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->wrapped_key, std::string("KEY\0KEY", 7));
    EXPECT_EQ(rec->sealed, "SEALED-e1");
    EXPECT_EQ(rec->state, EscrowState::active);
    auto by_token = es().find_by_token("tok-e1");
    ASSERT_TRUE(by_token);
    EXPECT_EQ(by_token->id, "e1");
    EXPECT_EQ(es().find_by_token("tok-other").error(), common::Errc::not_found);

    // A second seal of the same recipient is refused and leaves nothing behind (no second notice).
    auto again = create(record("e2", "Q1"), "N2");
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error(), common::Errc::already_exists);
    EXPECT_FALSE(es().get("e2"));
    EXPECT_FALSE(st->queue().envelope("N2"));
}

TEST_P(EscrowContract, ShredDestroysTheKeyAndPurgeTheCiphertext) {
    queue_awaiting("Q1");
    ASSERT_TRUE(create(record("e1", "Q1"), "N1"));
    EXPECT_EQ(backend->sql_text("SELECT count(*) FROM escrow_keys"), "1");
    auto e = entry("purged");
    EXPECT_EQ(es().purge("e1", t0, e, chain_fn).error(), common::Errc::already_exists) << "active: not purgeable";

    ASSERT_TRUE(es().shred("e1", EscrowState::revoked, t0 + 1h, entry("revoked"), chain_fn));
    auto rec = es().get("e1");
    ASSERT_TRUE(rec);
    EXPECT_TRUE(rec->wrapped_key.empty());
    EXPECT_EQ(rec->state, EscrowState::revoked);
    ASSERT_TRUE(rec->ended_at);
    EXPECT_EQ(*rec->ended_at, t0 + 1h);
    EXPECT_EQ(rec->sealed, "SEALED-e1");
    EXPECT_EQ(es().shred("e1", EscrowState::expired, t0, entry("expired"), chain_fn).error(),
              common::Errc::already_exists);
    EXPECT_EQ(backend->sql_text("SELECT count(*) FROM escrow_keys"), "0") << "the key's row is deleted";

    auto purgeable = es().purgeable_ids(t0 + 2h);
    ASSERT_TRUE(purgeable);
    ASSERT_EQ(purgeable->size(), 1u);
    EXPECT_TRUE(es().purgeable_ids(t0 + 1h)->empty()) << "ended_before is exclusive";
    ASSERT_TRUE(es().purge("e1", t0 + 2h, entry("purged"), chain_fn));
    rec = es().get("e1");
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->state, EscrowState::purged);
    EXPECT_TRUE(rec->sealed.empty());

    auto rows = es().audit("e1");
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

TEST_P(EscrowContract, ExpiredIdsAreTheActiveOnesPastExpiry) {
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
        auto got = es().expired_ids(row.now);
        ASSERT_TRUE(got);
        EXPECT_EQ(*got, row.want);
    }
    auto list = es().list(false);
    ASSERT_TRUE(list);
    EXPECT_EQ(list->size(), 2u);
}

TEST_P(EscrowContract, CodesFollowTheirRules) {
    queue_awaiting("Q1");
    ASSERT_TRUE(create(record("e1", "Q1"), "N1"));
    CodeRules rules;
    rules.max_tries_per_code = 3;
    rules.lock_after_failures = 5;
    rules.lock_for = 60min;

    auto check = [&](std::string code, TimePoint now) {
        auto r = es().check_code("e1", code, now, rules, entry(), chain_fn);
        EXPECT_TRUE(r) << r.error().message();
        return r ? *r : CodeCheck::wrong;
    };
    EXPECT_EQ(check("h1", t0), CodeCheck::no_code);

    ASSERT_TRUE(es().add_code("e1", "h1", false, t0, t0 + 15min, simple_message("C1"), entry("code_sent"), chain_fn));
    EXPECT_TRUE(st->queue().envelope("C1")) << "the code mail is queued with the code";
    EXPECT_EQ(*es().codes_sent_since("e1", t0), 1);
    EXPECT_EQ(*es().codes_sent_since("e1", t0 + 1ms), 0);

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
        es().add_code("e1", "h2", false, t0 + 2min, t0 + 17min, simple_message("C2"), entry("code_sent"), chain_fn));
    EXPECT_EQ(check("h1", t0 + 2min), CodeCheck::wrong) << "the old code is retired";
    EXPECT_EQ(es().get("e1")->failed_logins, 4);
    EXPECT_EQ(check("h2", t0 + 2min), CodeCheck::accepted);
    EXPECT_EQ(es().get("e1")->failed_logins, 0);
    EXPECT_EQ(check("h2", t0 + 2min), CodeCheck::no_code) << "single use";

    // Five wrong codes in a row (across codes) lock the message for lock_for.
    ASSERT_TRUE(
        es().add_code("e1", "h3", false, t0 + 3min, t0 + 18min, simple_message("C3"), entry("code_sent"), chain_fn));
    EXPECT_EQ(check("x", t0 + 3min), CodeCheck::wrong);
    EXPECT_EQ(check("x", t0 + 3min), CodeCheck::wrong);
    EXPECT_EQ(check("x", t0 + 3min), CodeCheck::wrong);
    ASSERT_TRUE(
        es().add_code("e1", "h4", false, t0 + 4min, t0 + 19min, simple_message("C4"), entry("code_sent"), chain_fn));
    EXPECT_EQ(check("x", t0 + 4min), CodeCheck::wrong);
    EXPECT_EQ(check("x", t0 + 4min), CodeCheck::locked);  // the fifth locks, and says so
    EXPECT_TRUE(es().get("e1")->locked_until);
    EXPECT_EQ(check("h4", t0 + 5min), CodeCheck::locked) << "even the right code, while locked";
    EXPECT_EQ(check("h4", t0 + 65min), CodeCheck::no_code) << "the lock is over, but h4 has expired";
    ASSERT_TRUE(
        es().add_code("e1", "h5", false, t0 + 66min, t0 + 81min, simple_message("C5"), entry("code_sent"), chain_fn));
    EXPECT_EQ(check("h5", t0 + 66min), CodeCheck::accepted);

    auto rows = es().audit("e1");
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

TEST_P(EscrowContract, SessionsEndAndRevocationEndsThemAll) {
    queue_awaiting("Q1");
    ASSERT_TRUE(create(record("e1", "Q1"), "N1"));
    EscrowSession s{"sid1", "e1", "csrf1", t0, t0, std::nullopt};
    ASSERT_TRUE(es().create_session(s));
    EXPECT_EQ(es().create_session(s).error(), common::Errc::already_exists);
    EXPECT_EQ(es().create_session(EscrowSession{"", "e1", "c", t0, t0, {}}).error(), common::Errc::invalid_argument);
    ASSERT_TRUE(es().touch_session("sid1", t0 + 5min));
    EXPECT_EQ(es().session("sid1")->last_seen, t0 + 5min);
    ASSERT_TRUE(es().create_session(EscrowSession{"sid2", "e1", "csrf2", t0, t0, {}}));
    ASSERT_TRUE(es().end_session("sid1", t0 + 6min));
    EXPECT_TRUE(es().session("sid1")->ended_at);
    EXPECT_EQ(es().touch_session("sid1", t0 + 7min).error(), common::Errc::not_found);
    EXPECT_FALSE(es().session("sid2")->ended_at);
    ASSERT_TRUE(es().shred("e1", EscrowState::revoked, t0 + 8min, entry("revoked"), chain_fn));
    EXPECT_TRUE(es().session("sid2")->ended_at) << "revocation ends every session";
    EXPECT_EQ(es().session("nope").error(), common::Errc::not_found);
}

TEST_P(EscrowContract, AuditIsChainedAndAppendOnly) {
    queue_awaiting("Q1");
    ASSERT_TRUE(create(record("e1", "Q1"), "N1"));
    auto e = entry("viewed");
    e.escrow_id = "e1";
    e.detail = "x";
    ASSERT_TRUE(es().append_audit(e, chain_fn));
    EXPECT_EQ(es().append_audit(entry(""), chain_fn).error(), common::Errc::invalid_argument);
    auto rows = es().audit("e1");
    ASSERT_TRUE(rows);
    ASSERT_EQ(rows->size(), 3u);
    EXPECT_EQ((*rows)[0].prev_hash, "");
    EXPECT_EQ((*rows)[0].hash, "|sealed/d");
    EXPECT_EQ((*rows)[2].hash, (*rows)[1].hash + "|viewed/x");
    EXPECT_NE(backend->sql_error("UPDATE escrow_audit SET detail = 'forged'").find("append-only"), std::string::npos);
    EXPECT_NE(backend->sql_error("DELETE FROM escrow_audit").find("append-only"), std::string::npos);
    EXPECT_EQ(backend->sql_text("SELECT count(*) FROM escrow_audit"), "3");
}

// Each lockout lasts twice as long as the one before (up to max_lock) and voids the live short code;
// wrong codes over the message's life reach a cap after which short codes are void for good; a
// strong code works while short codes are locked or capped, and its wrong tries never lock. A table
// of tries, each with its time and outcome.
TEST_P(EscrowContract, LockoutsDoubleAndTheCapVoidsShortCodes) {
    queue_awaiting("Q1");
    auto r0 = record("e1", "Q1");
    r0.expires = t0 + 30 * 24h;
    ASSERT_TRUE(create(std::move(r0), "N1"));
    int codes = 0;
    auto send = [&](const std::string& hash, bool strong, TimePoint at) {
        MAILWARD_GCC_WRESTRICT_OFF  // GCC bug 105651: "C" + a temporary string
        ASSERT_TRUE(es().add_code("e1", hash, strong, at, at + 15min, simple_message("C" + std::to_string(++codes)),
                                  entry("code_sent"), chain_fn));
        MAILWARD_GCC_WRESTRICT_ON
    };
    CodeRules rules;
    rules.max_tries_per_code = 5;
    rules.lock_after_failures = 2;
    rules.lock_for = 10min;
    rules.max_lock = 35min;
    rules.max_failures = 7;
    EXPECT_EQ(rules.lockout(1), 10min);
    EXPECT_EQ(rules.lockout(2), 20min);
    EXPECT_EQ(rules.lockout(3), 35min) << "40 min, capped";
    EXPECT_EQ(rules.lockout(60), 35min);

    struct Step {
        const char* what;
        int send;          // 0: none, 1: a short code "sN", 2: a strong code "SN" (N = the step's index)
        const char* code;  // what is typed (hash); "" = the code just sent
        std::chrono::minutes at;
        CodeCheck want;
        int lockouts;  // afterwards
        int total;     // total_failures afterwards
    } steps[] = {
        {"a short code", 1, "x", 0min, CodeCheck::wrong, 0, 1},
        {"second wrong in a row: lockout 1 (10 min)", 0, "x", 1min, CodeCheck::locked, 1, 2},
        {"the voided code, still locked", 0, "s0", 2min, CodeCheck::locked, 1, 2},
        {"a short code sent while locked is refused", 1, "", 3min, CodeCheck::locked, 1, 2},
        {"a strong code works while locked ... typo first", 2, "typo", 4min, CodeCheck::wrong, 1, 3},
        {"... a second typo does not lock", 0, "typo", 4min, CodeCheck::wrong, 1, 4},
        {"lock over (11 min): short code", 1, "x", 12min, CodeCheck::wrong, 1, 5},
        {"lockout 2: 20 min", 0, "x", 12min, CodeCheck::locked, 2, 6},
        {"still locked at 31 min", 1, "", 31min, CodeCheck::locked, 2, 6},
        {"over at 33 min; the 7th wrong code reaches the cap", 1, "x", 33min, CodeCheck::capped, 2, 7},
        {"short codes void for good", 1, "", 300min, CodeCheck::capped, 2, 7},
        {"a strong code still works", 2, "", 301min, CodeCheck::accepted, 0, 7},
    };
    for (std::size_t i = 0; i < std::size(steps); ++i) {
        const auto& s = steps[i];
        const TimePoint at = t0 + s.at;
        std::string sent;
        if (s.send == 1) sent = "s" + std::to_string(i);
        if (s.send == 2) sent = "S" + std::to_string(i);
        if (s.send) send(sent, s.send == 2, at);
        std::string typed = *s.code ? s.code : sent;
        auto r = es().check_code("e1", typed, at, rules, EscrowAuditEntry{}, chain_fn);
        ASSERT_TRUE(r) << s.what;
        EXPECT_EQ(to_string(*r), to_string(s.want)) << s.what;
        auto rec = es().get("e1");
        ASSERT_TRUE(rec);
        EXPECT_EQ(rec->lockouts, s.lockouts) << s.what;
        EXPECT_EQ(rec->total_failures, s.total) << s.what;
    }
    // The lockouts are in the audit, with their lengths.
    auto rows = es().audit("e1");
    ASSERT_TRUE(rows);
    std::vector<std::string> locks;
    for (const auto& r : *rows)
        if (r.event == "locked") locks.push_back(r.detail);
    ASSERT_EQ(locks.size(), 2u);
    EXPECT_NE(locks[0].find("lockout 1 for 600 s"), std::string::npos) << locks[0];
    EXPECT_NE(locks[1].find("lockout 2 for 1200 s"), std::string::npos) << locks[1];
}

TEST_P(EscrowContract, ReadReceiptsAreDueOnceAfterAViewOfAMessageThatWantsThem) {
    queue_awaiting("Q1");
    queue_awaiting("Q2");
    auto wants = record("e1", "Q1");
    wants.receipts = true;
    ASSERT_TRUE(create(wants, "N1"));
    ASSERT_TRUE(create(record("e2", "Q2"), "N2"));  // its sender wants none
    EXPECT_TRUE(es().get("e1")->receipts);
    EXPECT_FALSE(es().get("e2")->receipts);
    ASSERT_TRUE(es().read_receipts_due());
    EXPECT_TRUE(es().read_receipts_due()->empty()) << "not viewed yet";
    for (const char* id : {"e1", "e2"}) {
        auto v = entry("viewed");
        v.escrow_id = id;
        ASSERT_TRUE(es().append_audit(v, chain_fn));
    }
    EXPECT_EQ(*es().read_receipts_due(), std::vector<std::string>{"e1"});
    EXPECT_TRUE(*es().mark_read_receipt("e1"));
    EXPECT_FALSE(*es().mark_read_receipt("e1")) << "once";
    EXPECT_TRUE(es().get("e1")->read_receipt_sent);
    EXPECT_TRUE(es().read_receipts_due()->empty());
    EXPECT_EQ(es().mark_read_receipt("nope").error(), common::Errc::not_found);
}
