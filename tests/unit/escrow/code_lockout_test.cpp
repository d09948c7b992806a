// One-time codes under lockout (issue 11, item 7), through the service: wrong codes lock short
// codes; a code asked for during the lockout is a long one, mailed to the message's recipient
// only, and signs in at once (typed in lower case, with or without its dashes); nobody with only
// the link can keep the recipient out.
#include <gtest/gtest.h>

#include <algorithm>

#include "escrow_fixture.hpp"

using namespace mailward;
using namespace mailward::escrow;
using namespace mailward::escrow::test;
using namespace std::chrono_literals;

namespace {

struct CodeLockoutTest : EscrowFixture {};

std::string lower(std::string s) {
    for (auto& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

TEST_F(CodeLockoutTest, ALongCodeFromTheMailboxWorksDuringALockout) {
    settings.code_rules.lock_after_failures = 3;
    settings.max_code_sends = 10;
    start();
    auto [id, token] = seal_one();
    auto [short_code, to] = code(token, kT0);
    ASSERT_EQ(short_code.size(), 6u);
    EXPECT_EQ(to, "bob@example.net");
    const std::string wrong = short_code == "000000" ? "000001" : "000000";
    std::vector<store::CodeCheck> got;
    for (int i = 0; i < 3; ++i) got.push_back(svc->login(token, wrong, client, kT0 + 1min)->check);
    EXPECT_EQ(got, (std::vector<store::CodeCheck>{store::CodeCheck::wrong, store::CodeCheck::wrong,
                                                  store::CodeCheck::locked}));
    EXPECT_EQ(svc->login(token, short_code, client, kT0 + 2min)->check, store::CodeCheck::locked)
        << "the right short code no longer works";
    EXPECT_TRUE(svc->open_link(token, client, kT0 + 2min)->locked);

    // During the lockout a new code is long (16 characters, 80 bits) and goes to bob.
    auto [long_code, to2] = code(token, kT0 + 3min);
    ASSERT_EQ(long_code.size(), 19u) << long_code;  // XXXX-XXXX-XXXX-XXXX
    EXPECT_EQ(to2, "bob@example.net");
    EXPECT_EQ(svc->login(token, "AAAA-AAAA-AAAA-AAAA", client, kT0 + 4min)->check, store::CodeCheck::wrong)
        << "a wrong long code is only wrong";
    auto ok = svc->login(token, lower(long_code), client, kT0 + 4min);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->check, store::CodeCheck::accepted) << "typed in lower case, during the lockout";
    EXPECT_FALSE(ok->session_cookie.empty());
    auto rec = st->escrow().get(id);
    EXPECT_EQ(rec->lockouts, 0) << "a sign-in ends the escalation";
    EXPECT_FALSE(rec->locked_until);

    // After the sign-in, codes are short again.
    auto [again, to3] = code(token, kT0 + 5min);
    EXPECT_EQ(again.size(), 6u);
}

TEST_F(CodeLockoutTest, AfterTheCapOnlyLongCodesAreSent) {
    settings.code_rules.lock_after_failures = 100;
    settings.code_rules.max_failures = 4;
    settings.max_code_sends = 10;
    start();
    auto [id, token] = seal_one();
    auto [c1, t1] = code(token, kT0);
    const std::string wrong = c1 == "000000" ? "000001" : "000000";
    for (int i = 0; i < 4; ++i) (void)svc->login(token, wrong, client, kT0 + 1min);
    EXPECT_EQ(svc->login(token, c1, client, kT0 + 1min)->check, store::CodeCheck::capped);
    auto [c2, t2] = code(token, kT0 + 2h);
    EXPECT_EQ(c2.size(), 19u) << "short codes are void for good: " << c2;
    std::string typed = c2;
    typed.erase(std::remove(typed.begin(), typed.end(), '-'), typed.end());
    EXPECT_EQ(svc->login(token, typed, client, kT0 + 2h)->check, store::CodeCheck::accepted);
}

}  // namespace
