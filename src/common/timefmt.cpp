// RFC 5322 and ISO 8601 time formatting in UTC, and the one ISO 8601 / RFC 3339 parser.
#include "common/timefmt.hpp"

#include <ctime>

namespace mailward::common {
namespace {
std::string format(std::chrono::system_clock::time_point t, const char* fmt) {
    std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, fmt, &tm);
    return buf;
}
}  // namespace

std::string rfc5322_date(std::chrono::system_clock::time_point t) { return format(t, "%a, %d %b %Y %H:%M:%S +0000"); }

std::string iso8601(std::chrono::system_clock::time_point t) {
    if (t.time_since_epoch().count() == 0) return "-";
    return format(t, "%Y-%m-%dT%H:%M:%SZ");
}

std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view s) {
    std::size_t pos = 0;
    auto number = [&](std::size_t digits) -> std::optional<int> {
        if (pos + digits > s.size()) return std::nullopt;
        int v = 0;
        for (std::size_t i = 0; i < digits; ++i) {
            const char c = s[pos + i];
            if (c < '0' || c > '9') return std::nullopt;
            v = v * 10 + (c - '0');
        }
        pos += digits;
        return v;
    };
    auto literal = [&](char c) {
        if (pos >= s.size() || s[pos] != c) return false;
        ++pos;
        return true;
    };
    const auto y = number(4);
    if (!y || !literal('-')) return std::nullopt;
    const auto mo = number(2);
    if (!mo || !literal('-')) return std::nullopt;
    const auto d = number(2);
    if (!d) return std::nullopt;
    const std::chrono::year_month_day ymd{std::chrono::year(*y), std::chrono::month(static_cast<unsigned>(*mo)),
                                          std::chrono::day(static_cast<unsigned>(*d))};
    if (!ymd.ok()) return std::nullopt;
    std::chrono::system_clock::time_point t = std::chrono::sys_days(ymd);
    if (pos == s.size()) return t;
    if (!literal('T') && !literal('t')) return std::nullopt;  // RFC 3339 5.6 allows "t" and "z"
    const auto h = number(2);
    if (!h || !literal(':')) return std::nullopt;
    const auto mi = number(2);
    if (!mi) return std::nullopt;
    int sec = 0;
    if (literal(':')) {
        const auto se = number(2);
        if (!se) return std::nullopt;
        sec = *se;
        if (literal('.') || literal(',')) {  // a fraction: kept to the second
            if (!number(1)) return std::nullopt;
            while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
        }
    }
    if (*h > 23 || *mi > 59 || sec > 59) return std::nullopt;
    t += std::chrono::hours(*h) + std::chrono::minutes(*mi) + std::chrono::seconds(sec);
    if (pos == s.size()) return t;  // no zone: UTC
    if (literal('Z') || literal('z')) return pos == s.size() ? std::optional(t) : std::nullopt;
    const bool plus = literal('+');
    if (!plus && !literal('-')) return std::nullopt;
    const auto oh = number(2);
    if (!oh || !literal(':')) return std::nullopt;
    const auto om = number(2);
    if (!om || *oh > 23 || *om > 59 || pos != s.size()) return std::nullopt;
    const auto offset = std::chrono::hours(*oh) + std::chrono::minutes(*om);
    return plus ? t - offset : t + offset;
}

}  // namespace mailward::common
