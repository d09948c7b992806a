// Durations as written in the config file: an integer and one unit, "90s", "15m", "1h", "5d"
// (also "500ms" and "2w"). Parsing is strict: no spaces, no sign, no fractions, no overflow.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace mailward::common {

using Duration = std::chrono::milliseconds;

Result<Duration> parse_duration(std::string_view text);

// The shortest exact spelling, e.g. 5400000ms -> "90m"; used in logs, CLI output and docs.
std::string format_duration(Duration d);

}  // namespace mailward::common
