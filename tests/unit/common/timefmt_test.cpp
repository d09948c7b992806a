// Table-driven tests of the time formats: the one ISO 8601 parser (admin input: --expires, preload
// lists, the delivery log read by `policy simulate`) and its round trip with iso8601().
#include "common/timefmt.hpp"

#include <gtest/gtest.h>

using namespace mailward::common;
using namespace std::chrono;

TEST(Iso8601, ParsesDatesAndDateTimes) {
    struct Case {
        const char* text;
        sys_seconds want;
    };
    const Case cases[] = {
        {"2026-12-31", sys_days(year(2026) / 12 / 31)},
        {"2026-12-31T12:00:00Z", sys_days(year(2026) / 12 / 31) + hours(12)},
        {"2026-12-31T12:34Z", sys_days(year(2026) / 12 / 31) + hours(12) + minutes(34)},
        {"2028-02-29T23:59:59Z", sys_days(year(2028) / 2 / 29) + hours(23) + minutes(59) + seconds(59)},
        {"1970-01-01", sys_days(year(1970) / 1 / 1)},
        // what `policy --expires` and `policy simulate` accepted before the parsers were merged
        {"2026-12-31T12:00:00", sys_days(year(2026) / 12 / 31) + hours(12)},  // no zone: UTC
        {"2026-12-31t12:00:00z", sys_days(year(2026) / 12 / 31) + hours(12)},
        {"2026-12-31T12:00:00.5+02:00", sys_days(year(2026) / 12 / 31) + hours(10)},
        {"2026-12-31T12:00:00,999Z", sys_days(year(2026) / 12 / 31) + hours(12)},
        {"2026-12-31T23:30:00-01:00", sys_days(year(2027) / 1 / 1) + minutes(30)},
        {"2026-12-31T12:00+00:00", sys_days(year(2026) / 12 / 31) + hours(12)},
    };
    for (const auto& c : cases) {
        auto t = parse_iso8601(c.text);
        ASSERT_TRUE(t.has_value()) << c.text;
        EXPECT_EQ(time_point_cast<seconds>(*t), c.want) << c.text;
    }
}

TEST(Iso8601, RejectsEverythingElse) {
    const char* cases[] = {"",
                           "2026",
                           "2026-12",
                           "2026-13-01",
                           "2026-02-30",
                           "2027-02-29",
                           "2026-12-31T",
                           "2026-12-31T24:00:00Z",
                           "2026-12-31T12:60Z",
                           "2026-12-31 12:00Z",
                           "2026-12-31Z",
                           "26-12-31",
                           "2026-1-31",
                           "x026-12-31",
                           "2026-12-31T12:00:00ZZ",
                           "2026-12-31T12:00:61Z",
                           "2026-12-31T12:00:60Z",
                           "2026-12-31T12:00:00.Z",
                           "2026-12-31T12:00:00+0100",
                           "2026-12-31T12:00:00+01",
                           "2026-12-31T12:00:00+24:00",
                           "2026-12-31T12:00:00+01:60",
                           "2026-12-31T12:00:00+01:00Z",
                           "2026-12-31T12:00:00 Z",
                           "2026-12-31T12",
                           "2026-12-31T12:0Z",
                           " 2026-12-31",
                           "2026-12-31 ",
                           "2026-12-31T12:00.5Z"};
    for (const char* c : cases) EXPECT_FALSE(parse_iso8601(c).has_value()) << '"' << c << '"';
}

TEST(Iso8601, RoundTripsWithTheFormatter) {
    const auto t = sys_days(year(2026) / 11 / 28) + hours(17) + minutes(20) + seconds(29);
    EXPECT_EQ(iso8601(t), "2026-11-28T17:20:29Z");
    EXPECT_EQ(parse_iso8601(iso8601(t)), system_clock::time_point(t));
}
