// Sender patterns for sender binding ([submission] trusted_senders, each account's --sender list):
// "local@domain" (one address), "@domain" (every address of the domain) or "*" (anyone, config
// only). Matching is case-insensitive on the whole address, as Postfix's lookup tables are; the
// input is untrusted (config text, CLI arguments, MAIL FROM and From: addresses).
#include <algorithm>
#include <cctype>

#include "common/ascii.hpp"
#include "config/config.hpp"

namespace mailward::config {
namespace {

using common::ascii::lower;

bool clean(std::string_view s) {
    return std::none_of(s.begin(), s.end(), [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == ',';
    });
}

}  // namespace

std::optional<std::string> parse_sender_pattern(std::string_view text, bool allow_any) {
    if (text == "*") return allow_any ? std::optional<std::string>("*") : std::nullopt;
    if (text.empty() || text.size() > 320 || !clean(text)) return std::nullopt;
    const auto at = text.find('@');
    if (at == std::string_view::npos || at + 1 == text.size() || text.rfind('@') != at) return std::nullopt;
    const std::string_view domain = text.substr(at + 1);
    if (domain.front() == '.' || domain.back() == '.') {
        return std::nullopt;
    }
    return lower(text);
}

bool sender_allowed(const std::vector<std::string>& patterns, std::string_view address) {
    if (address.empty()) return false;
    const std::string a = lower(address);
    const auto at = a.rfind('@');
    for (const auto& p : patterns) {
        if (p == "*" || p == a) return true;
        if (p.front() == '@' && at != std::string::npos && a.compare(at, std::string::npos, p) == 0) return true;
    }
    return false;
}

}  // namespace mailward::config
