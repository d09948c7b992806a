// SASL helpers for AUTH on the submission server (RFC 4954): strict base64 (RFC 4648 section 4,
// padding required, no whitespace, no stray bits) and the PLAIN mechanism's message (RFC 4616
// section 2). Input is untrusted client text. Pure: no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mailward::smtp {

// Standard alphabet with "=" padding.
std::string base64_encode(std::string_view data);
// nullopt unless text is canonical base64 (length a multiple of 4, correct padding, zero pad bits).
// "" decodes to "". The SASL "=" (empty response, RFC 4954 4) is the caller's business.
std::optional<std::string> base64_decode(std::string_view text);

struct PlainCredentials {
    std::string authzid;  // "" when the client did not ask to act as someone else
    std::string authcid;
    std::string password;
};

// message = [authzid] NUL authcid NUL passwd. nullopt when the NUL count is not exactly two,
// authcid or passwd is empty or longer than 255 octets, any part is not valid UTF-8, or authzid
// is given and differs from authcid (this server does not allow acting for another user).
std::optional<PlainCredentials> decode_plain(std::string_view message);

}  // namespace mailward::smtp
