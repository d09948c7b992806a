// Queue ids sort by time and have a checkable shape; tokens have the promised entropy length.
#include "common/ids.hpp"

#include <gtest/gtest.h>

#include <set>

using namespace mailward::common;

TEST(Ids, QueueIdsAreWellFormedUniqueAndTimeOrdered) {
    auto t0 = std::chrono::system_clock::now();
    std::set<std::string> seen;
    std::string prev;
    for (int i = 0; i < 1000; ++i) {
        auto id = new_queue_id(t0 + std::chrono::milliseconds(i));
        EXPECT_TRUE(is_queue_id(id)) << id;
        EXPECT_TRUE(seen.insert(id).second) << id;
        if (!prev.empty()) {
            EXPECT_LT(prev.substr(0, 10), id.substr(0, 10));
        }
        prev = id;
    }
}

TEST(Ids, RejectsMalformedQueueIds) {
    const char* cases[] = {
        "", "abc", "0123456789abcdefgu", "0123456789ABCDEFGH", "0123456789abcdefg!", "0123456789abcdefghj"};
    for (const char* c : cases) EXPECT_FALSE(is_queue_id(c)) << c;
}

TEST(Ids, RandomTokenLength) {
    EXPECT_EQ(random_token(16).size(), 26u);  // 128 bits -> 26 base32 characters
    EXPECT_EQ(random_token(20).size(), 32u);
    EXPECT_NE(random_token(16), random_token(16));
}
