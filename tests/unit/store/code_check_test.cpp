// decide_code (store/code_check.hpp), the one code-check decision both escrow backends apply: a
// table of counters, live code and typed code against the result, what is written and the audit.
#include <gtest/gtest.h>

#include "store/code_check.hpp"
#include "store_test_util.hpp"

using namespace mailward::store;
using namespace std::chrono_literals;

namespace {

const EscrowTime t0 = EscrowTime(std::chrono::milliseconds(1'800'000'000'000));
const std::string kGood(64, 'a'), kBad(64, 'b');

struct Case {
    const char* name;
    CodeCounters counters;
    std::optional<LiveCode> code;
    std::string typed;
    CodeCheck want;
    bool write;
    CodeCounters next;  // checked when write
    bool voids;
    std::string_view event;
};

}  // namespace

TEST(DecideCode, FollowsTheRules) {
    CodeRules rules;  // 5 tries per code, lock after 10, 1 h doubling to 24 h, cap 30
    const auto locked = std::optional<EscrowTime>(t0 + 10min);
    const auto past = std::optional<EscrowTime>(t0 - 1min);
    const Case cases[] = {
        {"no code", {}, std::nullopt, kGood, CodeCheck::no_code, false, {}, false, {}},
        {"no code, locked", {0, locked, 0, 1}, std::nullopt, kGood, CodeCheck::locked, false, {}, false, {}},
        {"no code, capped", {0, {}, 30, 0}, std::nullopt, kGood, CodeCheck::capped, false, {}, false, {}},
        {"short code while locked",
         {0, locked, 10, 1},
         LiveCode{kGood, 0, false},
         kGood,
         CodeCheck::locked,
         false,
         {},
         false,
         {}},
        {"short code past the cap",
         {0, {}, 30, 0},
         LiveCode{kGood, 0, false},
         kGood,
         CodeCheck::capped,
         false,
         {},
         false,
         {}},
        {"tries used up", {}, LiveCode{kGood, 5, false}, kGood, CodeCheck::exhausted, false, {}, false, {}},
        {"right code resets the row, keeps the total",
         {3, past, 7, 2},
         LiveCode{kGood, 1, false},
         kGood,
         CodeCheck::accepted,
         true,
         {0, {}, 7, 0},
         false,
         escrow_event::code_accepted},
        {"strong code while locked",
         {0, locked, 12, 1},
         LiveCode{kGood, 0, true},
         kGood,
         CodeCheck::accepted,
         true,
         {0, {}, 12, 0},
         false,
         escrow_event::code_accepted},
        {"wrong short code counts",
         {2, {}, 4, 0},
         LiveCode{kGood, 0, false},
         kBad,
         CodeCheck::wrong,
         true,
         {3, {}, 5, 0},
         false,
         escrow_event::code_failed},
        {"tenth wrong in a row locks for 1 h",
         {9, {}, 9, 0},
         LiveCode{kGood, 1, false},
         kBad,
         CodeCheck::locked,
         true,
         {0, t0 + 1h, 10, 1},
         true,
         escrow_event::locked},
        {"second lockout lasts twice as long",
         {9, past, 19, 1},
         LiveCode{kGood, 0, false},
         kBad,
         CodeCheck::locked,
         true,
         {0, t0 + 2h, 20, 2},
         true,
         escrow_event::locked},
        {"wrong strong code never locks",
         {9, locked, 9, 1},
         LiveCode{kGood, 0, true},
         kBad,
         CodeCheck::wrong,
         true,
         {9, locked, 10, 1},
         false,
         escrow_event::code_failed},
        {"the cap voids short codes",
         {1, {}, 29, 0},
         LiveCode{kGood, 0, false},
         kBad,
         CodeCheck::capped,
         true,
         {2, {}, 30, 0},
         true,
         escrow_event::code_failed},
        {"a hash of another length never matches",
         {},
         LiveCode{kGood, 0, false},
         kGood.substr(0, 63),
         CodeCheck::wrong,
         true,
         {1, {}, 1, 0},
         false,
         escrow_event::code_failed},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const auto d = decide_code(c.counters, c.code, c.typed, t0, rules);
        EXPECT_EQ(d.result, c.want);
        EXPECT_EQ(d.write, c.write);
        if (!c.write) continue;
        EXPECT_EQ(d.use_code, c.want == CodeCheck::accepted);
        EXPECT_EQ(d.count_try, c.want != CodeCheck::accepted);
        EXPECT_EQ(d.next.failed_logins, c.next.failed_logins);
        EXPECT_EQ(d.next.locked_until, c.next.locked_until);
        EXPECT_EQ(d.next.total_failures, c.next.total_failures);
        EXPECT_EQ(d.next.lockouts, c.next.lockouts);
        EXPECT_EQ(d.void_short_codes, c.voids);
        EXPECT_EQ(d.event, c.event);
        EXPECT_EQ(d.detail.empty(), c.want == CodeCheck::accepted) << d.detail;
    }
}
