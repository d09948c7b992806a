// ASCII-only text helpers for protocol and configuration text: case folding and comparison (the
// case-insensitive strings of RFC 5234 2.3 ABNF), and trimming of spaces and tabs (WSP). They never
// depend on the locale and leave octets >= 0x80 as they are.
#pragma once

#include <string>
#include <string_view>

namespace mailward::common::ascii {

constexpr bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }
constexpr bool is_wsp(char c) { return c == ' ' || c == '\t'; }

constexpr char to_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// A lower-case copy (ASCII letters only).
inline std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = to_lower(c);
    return out;
}

// Equal without regard to ASCII case.
constexpr bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (to_lower(a[i]) != to_lower(b[i])) return false;
    }
    return true;
}

// s begins with prefix, without regard to ASCII case.
constexpr bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// s without leading and trailing spaces and tabs.
constexpr std::string_view trim_wsp(std::string_view s) {
    while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_wsp(s.back())) s.remove_suffix(1);
    return s;
}

}  // namespace mailward::common::ascii
