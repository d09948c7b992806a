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

}  // namespace mailward::common
