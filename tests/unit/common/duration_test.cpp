// Table-driven tests of config duration parsing and formatting.
#include "common/duration.hpp"

#include <gtest/gtest.h>

using namespace mailward::common;
using namespace std::chrono_literals;

TEST(Duration, ParsesValidSpellings) {
    struct Case {
        const char* text;
        Duration want;
    };
    const Case cases[] = {
        {"90s", 90s}, {"15m", 15min},   {"1h", 1h}, {"5d", 120h},
        {"2w", 336h}, {"500ms", 500ms}, {"0s", 0s}, {"0010m", 10min},
    };
    for (const auto& c : cases) {
        auto r = parse_duration(c.text);
        ASSERT_TRUE(r.has_value()) << c.text;
        EXPECT_EQ(*r, c.want) << c.text;
    }
}

TEST(Duration, RejectsBadSpellings) {
    const char* cases[] = {"",
                           "s",
                           "90",
                           "-5m",
                           "+5m",
                           "1.5h",
                           "5 m",
                           " 5m",
                           "5m ",
                           "5M",
                           "5y",
                           "5mss",
                           "99999999999999999999d",
                           "9223372036854775807d",
                           "1h30m"};
    for (const char* c : cases) {
        EXPECT_FALSE(parse_duration(c).has_value()) << '"' << c << '"';
    }
}

TEST(Duration, FormatsShortestExactUnit) {
    struct Case {
        Duration d;
        const char* want;
    };
    const Case cases[] = {{90s, "90s"}, {60s, "1m"}, {120h, "5d"}, {1500ms, "1500ms"}, {0s, "0s"}, {336h, "2w"}};
    for (const auto& c : cases) EXPECT_EQ(format_duration(c.d), c.want);
}
