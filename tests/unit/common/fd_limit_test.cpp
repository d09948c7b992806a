// common::raise_fd_limit (common/process.hpp): the soft open-files limit goes up to what is wanted,
// capped by the hard limit, and never down. Only the soft limit is changed here (and restored), so
// the test runs unprivileged.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>

#include "common/process.hpp"

using namespace mailward;

namespace {

struct SoftLimit {
    rlimit saved{};
    SoftLimit() { ::getrlimit(RLIMIT_NOFILE, &saved); }
    ~SoftLimit() { ::setrlimit(RLIMIT_NOFILE, &saved); }
    bool set(rlim_t soft) {
        rlimit r = saved;
        r.rlim_cur = soft;
        return ::setrlimit(RLIMIT_NOFILE, &r) == 0;
    }
    static rlim_t soft() {
        rlimit r{};
        ::getrlimit(RLIMIT_NOFILE, &r);
        return r.rlim_cur;
    }
};

TEST(FdLimitTest, RaisesTheSoftLimitUpToTheHardOneNeverDown) {
    SoftLimit guard;
    const rlim_t hard = guard.saved.rlim_max;
    if (hard == RLIM_INFINITY || hard < 600) GTEST_SKIP() << "hard open-files limit " << hard << " unusable here";
    const rlim_t cap = hard;
    struct Case {
        const char* name;
        rlim_t soft_before;
        unsigned long want;
        rlim_t soft_after;
    };
    const Case cases[] = {
        {"raised to want", 256, 512, 512},
        {"capped by the hard limit", 256, static_cast<unsigned long>(cap) + 1000, cap},
        {"never lowered", 512, 300, 512},
        {"already there", 512, 512, 512},
    };
    for (const auto& c : cases) {
        ASSERT_TRUE(guard.set(c.soft_before)) << c.name;
        const auto got = common::raise_fd_limit(c.want);
        EXPECT_EQ(got.before, c.soft_before) << c.name;
        EXPECT_EQ(got.after, c.soft_after) << c.name;
        EXPECT_EQ(got.hard, hard) << c.name;
        EXPECT_EQ(SoftLimit::soft(), c.soft_after) << c.name;
    }
}

}  // namespace
