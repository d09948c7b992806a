// UTF-8 validation (RFC 3629 section 4) shared by the address, command and SASL parsers.
// Input is untrusted octets; nothing here allocates. Internal to src/smtp/.
#pragma once

#include <cstddef>
#include <string_view>

namespace mailward::smtp::detail {

// Length (1-4) of the well-formed UTF-8 sequence that starts at text[pos], or 0 when the octets
// there are not one (overlong forms, surrogates, code points above U+10FFFF, truncation).
std::size_t utf8_sequence_length(std::string_view text, std::size_t pos) noexcept;

// True when every octet of text is part of a well-formed UTF-8 sequence.
bool valid_utf8(std::string_view text) noexcept;

// True when text holds an octet >= 0x80.
bool has_8bit(std::string_view text) noexcept;

}  // namespace mailward::smtp::detail
