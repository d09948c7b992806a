// Strict base64 (RFC 4648 section 4) through libsodium's constant-time codec, ORIGINAL variant, so
// that decoding a password does not leak it through table-lookup timing; and the PLAIN message of
// RFC 4616 section 2. Input is untrusted client text.
#include "smtp/sasl.hpp"

#include <sodium.h>

#include "smtp/utf8.hpp"

namespace mailward::smtp {
namespace {

constexpr std::size_t kMaxPlainField = 255;  // RFC 4616 2: 1*SAFE, at most 255 octets

// libsodium 1.0.18 (Debian 12) reads each character as a signed char and takes every octet >= 0x80
// for "/", so "\xC3\xA9\xC3\xA9" decodes. Check the alphabet first, without an early exit so
// the time does not depend on where a bad character is.
bool base64_alphabet(std::string_view text) {
    unsigned bad = 0;
    for (char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        const bool ok = (c >= 'A' && c <= 'Z') | (c >= 'a' && c <= 'z') | (c >= '0' && c <= '9') | (c == '+') |
                        (c == '/') | (c == '=');
        bad |= static_cast<unsigned>(!ok);
    }
    return bad == 0;
}

}  // namespace

std::string base64_encode(std::string_view data) {
    const std::size_t len = sodium_base64_ENCODED_LEN(data.size(), sodium_base64_VARIANT_ORIGINAL);
    std::string out(len, '\0');  // len counts the terminating NUL
    sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(data.data()), data.size(),
                      sodium_base64_VARIANT_ORIGINAL);
    out.resize(len - 1);
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    if (text.empty()) return std::string();
    if (!base64_alphabet(text)) return std::nullopt;
    std::string out(text.size() / 4 * 3, '\0');
    std::size_t out_len = 0;
    // b64_end == nullptr: libsodium fails unless all of text was consumed; ignore == nullptr: no
    // character is skipped. It also rejects missing padding and non-zero pad bits.
    const int rc = sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(),
                                     nullptr, &out_len, nullptr, sodium_base64_VARIANT_ORIGINAL);
    if (rc != 0 || out_len > out.size()) return std::nullopt;
    out.resize(out_len);
    return out;
}

std::optional<PlainCredentials> decode_plain(std::string_view message) {
    const std::size_t first = message.find('\0');
    if (first == std::string_view::npos) return std::nullopt;
    const std::size_t second = message.find('\0', first + 1);
    if (second == std::string_view::npos) return std::nullopt;
    if (message.find('\0', second + 1) != std::string_view::npos) return std::nullopt;
    PlainCredentials c;
    c.authzid = std::string(message.substr(0, first));
    c.authcid = std::string(message.substr(first + 1, second - first - 1));
    c.password = std::string(message.substr(second + 1));
    if (c.authcid.empty() || c.password.empty()) return std::nullopt;
    if (c.authcid.size() > kMaxPlainField || c.password.size() > kMaxPlainField) return std::nullopt;
    if (c.authzid.size() > kMaxPlainField) return std::nullopt;
    if (!detail::valid_utf8(c.authzid) || !detail::valid_utf8(c.authcid) || !detail::valid_utf8(c.password)) {
        return std::nullopt;
    }
    if (!c.authzid.empty() && c.authzid != c.authcid) return std::nullopt;
    return c;
}

}  // namespace mailward::smtp
