// xtext of RFC 3461 section 4 (ENVID, ORCPT, and AUTH= of RFC 4954 section 5): "+" followed by two
// upper-case hex digits encodes an octet; other octets must be "!".."~" except "+" and "=".
// Input to xtext_decode is untrusted client text.
#include "smtp/command.hpp"

namespace mailward::smtp {
namespace {

int upper_hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;  // RFC 3461 hexchar allows upper case only
}

bool plain_xchar(unsigned char c) { return c >= '!' && c <= '~' && c != '+' && c != '='; }

}  // namespace

std::optional<std::string> xtext_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '+') {
            if (i + 2 >= text.size()) return std::nullopt;  // needs two digits after "+"
            const int hi = upper_hex_value(text[i + 1]);
            const int lo = upper_hex_value(text[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (plain_xchar(c)) {
            out.push_back(static_cast<char>(c));
        } else {
            return std::nullopt;
        }
    }
    return out;
}

std::string xtext_encode(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (plain_xchar(c)) {
            out.push_back(ch);
        } else {
            out.push_back('+');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0x0F]);
        }
    }
    return out;
}

}  // namespace mailward::smtp
