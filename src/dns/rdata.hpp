// Decoding of DNS rdata in wire format (RFC 1035 3.3, RFC 6698 2.1 TLSA, RFC 7505 null MX) as
// libunbound hands it over. Input is untrusted: every length is checked; malformed -> nullopt.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dns/resolver.hpp"

namespace mailward::dns::rdata {

// A domain name at data[pos...], uncompressed; lower case, no trailing dot; "" for the root.
// Labels must be printable ASCII without '.' (host names; anything else is refused, not escaped).
std::optional<std::string> name(std::string_view data, std::size_t& pos);
std::optional<MxRecord> mx(std::string_view data);
std::optional<std::string> a(std::string_view data);     // 4 octets -> "a.b.c.d"
std::optional<std::string> aaaa(std::string_view data);  // 16 octets -> RFC 5952 text
std::optional<TlsaRecord> tlsa(std::string_view data);
std::optional<std::string> txt(std::string_view data);  // character-strings concatenated

}  // namespace mailward::dns::rdata
