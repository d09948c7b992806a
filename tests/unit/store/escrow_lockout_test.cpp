// One-time code lockouts (issue 11, item 7): each lockout lasts twice as long as the one before
// (up to max_lock) and voids the live short code; wrong codes over the message's life reach a cap
// after which short codes are void for good; a strong code works while short codes are locked
// or capped, and its wrong tries never lock. A table of tries, each with its time and outcome.
#include <gtest/gtest.h>

#include <future>

#include "common/gcc_wrestrict.hpp"
#include "store/store.hpp"
#include "store_test_util.hpp"

using namespace mailward;
using namespace mailward::store;
using namespace mailward::store::test;
using namespace std::chrono_literals;

namespace {

const TimePoint t0 = ms(1'800'000'000'000);

std::string chain_fn(const std::string& prev, const EscrowAuditEntry& e) { return prev + "|" + e.event; }

EscrowAuditEntry entry(const char* event) {
    EscrowAuditEntry e;
    e.at = t0;
    e.event = event;
    return e;
}

struct LockoutTest : ::testing::Test {
    TempDir dir;
    std::unique_ptr<Store> st;
    void SetUp() override {
        auto s = store::open(config_for(dir.path()));
        ASSERT_TRUE(s) << s.error().message();
        st = std::move(*s);
        auto m = simple_message("Q1");
        m.envelope.recipients[0].state = RcptState::awaiting_escrow;
        ASSERT_TRUE(submit_sync(st->queue(), std::move(m)));
        EscrowRecord r;
        r.id = "e1";
        r.queue_id = "Q1";
        r.recipient = "bob@example.org";
        r.token_hash = "tok";
        r.wrapped_key = "KEY";
        r.sealed = "SEALED";
        r.created = t0;
        r.expires = t0 + 30 * 24h;
        std::promise<Result<void>> p;
        auto f = p.get_future();
        st->escrow().create(r, entry("sealed"), simple_message("N1"), chain_fn,
                            [&p](Result<void> res) { p.set_value(res); });
        ASSERT_TRUE(f.get());
    }
    int codes = 0;
    void send(const std::string& hash, bool strong, TimePoint at) {
        MAILWARD_GCC_WRESTRICT_OFF  // GCC bug 105651: "C" + a temporary string
        ASSERT_TRUE(st->escrow().add_code("e1", hash, strong, at, at + 15min,
                                          simple_message("C" + std::to_string(++codes)), entry("code_sent"), chain_fn));
        MAILWARD_GCC_WRESTRICT_ON
    }
};

TEST_F(LockoutTest, LockoutsDoubleAndTheCapVoidsShortCodes) {
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
        auto r = st->escrow().check_code("e1", typed, at, rules, EscrowAuditEntry{}, chain_fn);
        ASSERT_TRUE(r) << s.what;
        EXPECT_EQ(to_string(*r), to_string(s.want)) << s.what;
        auto rec = st->escrow().get("e1");
        ASSERT_TRUE(rec);
        EXPECT_EQ(rec->lockouts, s.lockouts) << s.what;
        EXPECT_EQ(rec->total_failures, s.total) << s.what;
    }
    // The lockouts are in the audit, with their lengths.
    auto rows = st->escrow().audit("e1");
    ASSERT_TRUE(rows);
    std::vector<std::string> locks;
    for (const auto& r : *rows)
        if (r.event == "locked") locks.push_back(r.detail);
    ASSERT_EQ(locks.size(), 2u);
    EXPECT_NE(locks[0].find("lockout 1 for 600 s"), std::string::npos) << locks[0];
    EXPECT_NE(locks[1].find("lockout 2 for 1200 s"), std::string::npos) << locks[1];
}

}  // namespace
