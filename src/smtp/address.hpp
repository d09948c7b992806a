// Mailbox and path syntax of RFC 5321 section 4.1.2 (Reverse-path, Forward-path, Mailbox,
// Local-part as Dot-string or Quoted-string, Domain or address literal), with the UTF-8 extensions
// of RFC 6531 section 3.3 when SMTPUTF8 was given. Input is untrusted client text.
#pragma once

#include <string>
#include <string_view>

#include "common/result.hpp"

namespace mailward::smtp {

struct Mailbox {
    std::string local;   // as written: a dot-string, or a quoted-string including its quotes
    std::string domain;  // a domain (no trailing dot) or an address literal "[1.2.3.4]", "[IPv6:...]"
    bool empty() const { return local.empty() && domain.empty(); }
    std::string to_string() const { return empty() ? std::string() : local + "@" + domain; }
    std::string domain_lower() const;  // domain in ASCII lower case (UTF-8 bytes untouched)
};

enum class AddressError {
    ok = 0,
    missing_brackets = 1,  // a path must be <...>
    bad_local_part,
    bad_domain,
    local_part_too_long,  // > 64 octets (RFC 5321 4.5.3.1.1)
    domain_too_long,      // > 255 octets (4.5.3.1.2)
    path_too_long,        // > 256 octets (4.5.3.1.3)
    utf8_not_allowed,     // 8-bit octets without SMTPUTF8
    bad_utf8,             // invalid UTF-8 sequence
    null_not_allowed,     // "<>" where a mailbox is required
};

const boost::system::error_category& address_category() noexcept;
inline error_code make_error_code(AddressError e) noexcept { return {static_cast<int>(e), address_category()}; }

// Parses "<path>" as in MAIL FROM / RCPT TO. A source route "<@a,@b:user@host>" is accepted and
// discarded (RFC 5321 4.1.2, C.). allow_null: "<>" is accepted and gives an empty Mailbox.
// consumed receives how many characters of text formed the path (parameters follow it).
Result<Mailbox> parse_path(std::string_view text, bool allow_null, bool utf8, std::size_t* consumed = nullptr);

// Parses a bare "local@domain" (no brackets), e.g. a user name or a config value.
Result<Mailbox> parse_mailbox(std::string_view text, bool utf8);

}  // namespace mailward::smtp

namespace boost::system {
template <>
struct is_error_code_enum<mailward::smtp::AddressError> : std::true_type {};
}  // namespace boost::system
