// "TLS-Required: No" (RFC 8689 section 5): finding the header field and the sender's right to it.
// The message is untrusted input: only its header is read, lines may end in CRLF or LF, and a
// folded field (RFC 5322 section 2.2.3) is unfolded before its value is compared.
#include "policy/tls_optional.hpp"

#include <algorithm>
#include <cctype>

#include "common/ascii.hpp"

namespace mailward::policy {
namespace {

using common::ascii::iequals;

std::string_view trim(std::string_view v) {
    const auto first = v.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return {};
    const auto last = v.find_last_not_of(" \t\r\n");
    return v.substr(first, last - first + 1);
}

// The field's value is "No", possibly with a trailing comment-free whitespace; the unfolded value
// may hold folding whitespace only.
bool value_is_no(std::string value) {
    std::string compact;
    for (char c : value)
        if (c != '\r' && c != '\n') compact += c;
    return iequals(trim(compact), "no");
}

}  // namespace

bool has_tls_required_no(std::string_view message) {
    constexpr std::string_view name = "tls-required";
    std::size_t pos = 0;
    while (pos < message.size()) {
        std::size_t eol = message.find('\n', pos);
        if (eol == std::string_view::npos) eol = message.size();
        std::string_view line = message.substr(pos, eol - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) return false;  // end of the header
        pos = eol + 1;
        const auto colon = line.find(':');
        if (colon == std::string_view::npos || line.front() == ' ' || line.front() == '\t') continue;
        // RFC 5322 allows whitespace before the colon in the obsolete syntax; accept it.
        if (!iequals(trim(line.substr(0, colon)), name)) continue;
        std::string value(line.substr(colon + 1));
        while (pos < message.size() && (message[pos] == ' ' || message[pos] == '\t')) {
            std::size_t next = message.find('\n', pos);
            if (next == std::string_view::npos) next = message.size();
            value += message.substr(pos, next - pos);
            pos = next + 1;
        }
        if (value_is_no(std::move(value))) return true;
    }
    return false;
}

TlsOptionalRight tls_optional_right(std::string_view auth_user, std::optional<bool> account_allows,
                                    bool trusted_networks_allowed) {
    TlsOptionalRight r;
    if (auth_user.empty()) {
        r.allowed = trusted_networks_allowed;
        r.why = trusted_networks_allowed ? "unauthenticated trusted-network client, allowed by [policy] "
                                           "tls_optional_trusted_networks"
                                         : "unauthenticated trusted-network clients may not use it ([policy] "
                                           "tls_optional_trusted_networks = false)";
        return r;
    }
    const std::string who = "account " + std::string(auth_user);
    if (!account_allows) {
        r.why = who + " no longer exists";
    } else if (*account_allows) {
        r.allowed = true;
        r.why = who + " was given --allow-tls-optional";
    } else {
        r.why = who + " may not use it (mailward user set NAME --allow-tls-optional)";
    }
    return r;
}

TlsRequiredNoEffect tls_required_no_effect(bool requiretls, const TlsOptionalRight& right) {
    if (requiretls) return {false, "the message has REQUIRETLS (RFC 8689 section 5)"};
    return {right.allowed, right.why};
}

}  // namespace mailward::policy
