// RFC 5322 and ISO 8601 time formatting in UTC.
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

std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text) {
    auto digits = [&](std::size_t at, std::size_t n, int& out) {
        if (at + n > text.size()) return false;
        out = 0;
        for (std::size_t i = at; i < at + n; ++i) {
            if (text[i] < '0' || text[i] > '9') return false;
            out = out * 10 + (text[i] - '0');
        }
        return true;
    };
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    if (!digits(0, 4, y) || text.size() < 10 || text[4] != '-' || !digits(5, 2, mo) || text[7] != '-' ||
        !digits(8, 2, d)) {
        return std::nullopt;
    }
    if (text.size() != 10) {
        if (text[10] != 'T' || !digits(11, 2, h) || text.size() < 17 || text[13] != ':' || !digits(14, 2, mi)) {
            return std::nullopt;
        }
        std::size_t at = 16;
        if (text.size() > at && text[at] == ':') {
            if (!digits(at + 1, 2, sec)) return std::nullopt;
            at += 3;
        }
        if (text.size() != at + 1 || text[at] != 'Z') return std::nullopt;
    }
    const std::chrono::year_month_day ymd{std::chrono::year(y), std::chrono::month(static_cast<unsigned>(mo)),
                                          std::chrono::day(static_cast<unsigned>(d))};
    if (!ymd.ok() || h > 23 || mi > 59 || sec > 59) return std::nullopt;
    return std::chrono::sys_days(ymd) + std::chrono::hours(h) + std::chrono::minutes(mi) + std::chrono::seconds(sec);
}

}  // namespace mailward::common
