// The security ladder of docs/design.md: none < may < encrypt < verify < dane. Ordered, comparable,
// printable, parseable. Pure; no OpenSSL.
#pragma once

#include <optional>
#include <string_view>

namespace mailward::tls {

enum class Level { none = 0, may = 1, encrypt = 2, verify = 3, dane = 4 };

std::string_view to_string(Level l);
std::optional<Level> parse_level(std::string_view s);

}  // namespace mailward::tls
