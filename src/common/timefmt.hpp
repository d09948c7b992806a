// Time formats used in mail headers and logs: RFC 5322 3.3 date-time and ISO 8601, both in UTC.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace mailward::common {

// "Sat, 28 Nov 2026 17:20:29 +0000"
std::string rfc5322_date(std::chrono::system_clock::time_point t);
// "2026-11-28T17:20:29Z", or "-" for the epoch (an unset time).
std::string iso8601(std::chrono::system_clock::time_point t);
// The one ISO 8601 parser (admin input: --expires, preload lists; the delivery log). Accepts a date
// "2026-12-31" (00:00:00 UTC that day) or a date-time "2026-12-31T12:00Z", "2026-12-31T12:00:00Z",
// with a fraction kept to the second ("12:00:00.5Z"), an offset ("+02:00", "-05:00") or no zone
// (UTC); 't' and 'z' as RFC 3339 5.6 allows. nullopt for anything else, including impossible dates
// ("2026-02-30"), hours past 23 and leap seconds.
std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text);

}  // namespace mailward::common
