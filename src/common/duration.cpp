// Parses and formats config durations ("90s", "15m", "1h", "5d").
#include "common/duration.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <limits>

namespace mailward::common {
namespace {

struct Unit {
    std::string_view suffix;
    std::int64_t ms;
};

// Longest suffix first so "ms" is not read as "m".
constexpr std::array<Unit, 6> kUnits{{
    {"ms", 1},
    {"w", 7LL * 24 * 3600 * 1000},
    {"d", 24LL * 3600 * 1000},
    {"h", 3600LL * 1000},
    {"m", 60LL * 1000},
    {"s", 1000},
}};

}  // namespace

Result<Duration> parse_duration(std::string_view text) {
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    if (digits == 0 || digits == text.size()) return Errc::invalid_argument;
    std::string_view suffix = text.substr(digits);
    std::int64_t value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, value);
    if (ec != std::errc{} || ptr != text.data() + digits) return Errc::invalid_argument;
    for (const auto& unit : kUnits) {
        if (suffix == unit.suffix) {
            if (value > std::numeric_limits<std::int64_t>::max() / unit.ms) {
                return Errc::invalid_argument;
            }
            return Duration{value * unit.ms};
        }
    }
    return Errc::invalid_argument;
}

std::string format_duration(Duration d) {
    const std::int64_t ms = d.count();
    if (ms == 0) return "0s";
    for (std::size_t i = 1; i < kUnits.size(); ++i) {  // largest unit that divides exactly
        if (ms % kUnits[i].ms == 0) return std::to_string(ms / kUnits[i].ms) + std::string(kUnits[i].suffix);
    }
    return std::to_string(ms) + "ms";
}

}  // namespace mailward::common
