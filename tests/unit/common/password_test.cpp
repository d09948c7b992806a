// Argon2id hashing: round trip, wrong passwords and malformed hashes are refused.
#include "common/password.hpp"

#include <gtest/gtest.h>

using namespace mailward::common;

TEST(Password, HashVerifiesOnlyTheRightPassword) {
    auto h = hash_password("correct horse");
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->rfind("$argon2id$", 0), 0u) << *h;
    EXPECT_TRUE(verify_password(*h, "correct horse"));
    const char* wrong[] = {"", "correct hors", "correct horse ", "Correct horse"};
    for (const char* w : wrong) EXPECT_FALSE(verify_password(*h, w)) << w;
}

TEST(Password, MalformedHashesNeverVerify) {
    const char* hashes[] = {"", "plain", "$argon2id$v=19$m=65536,t=2,p=1$garbage", "$2y$10$abcdefghijklmnopqrstuv"};
    for (const char* h : hashes) EXPECT_FALSE(verify_password(h, "plain")) << h;
}

TEST(Password, SaltsDiffer) {
    auto a = hash_password("same");
    auto b = hash_password("same");
    ASSERT_TRUE(a && b);
    EXPECT_NE(*a, *b);
}
