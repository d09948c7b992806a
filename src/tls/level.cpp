// The security ladder's names (docs/design.md): none, may, encrypt, verify, dane.
#include "tls/level.hpp"

#include <array>

namespace mailward::tls {
namespace {
constexpr std::array<std::string_view, 5> kNames{"none", "may", "encrypt", "verify", "dane"};
}

std::string_view to_string(Level l) { return kNames[static_cast<std::size_t>(l)]; }

std::optional<Level> parse_level(std::string_view s) {
    for (std::size_t i = 0; i < kNames.size(); ++i) {
        if (kNames[i] == s) return static_cast<Level>(i);
    }
    return std::nullopt;
}

}  // namespace mailward::tls
