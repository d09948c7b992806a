// sanitize_filename (see view.hpp): a file name that is safe to offer as a download anywhere.
#include <array>
#include <string>
#include <string_view>

#include "message/view.hpp"

namespace mailward::message {
namespace {

constexpr std::size_t kMaxBytes = 120;

bool reserved_windows_name(std::string_view stem) {
    // Windows also reserves COM and LPT with the superscript digits 1-3 (U+00B9, U+00B2, U+00B3).
    static constexpr std::array<std::string_view, 30> names = {
        "con",         "prn",         "aux",         "nul",         "conin$",      "conout$",    "com1", "com2",
        "com3",        "com4",        "com5",        "com6",        "com7",        "com8",       "com9", "lpt1",
        "lpt2",        "lpt3",        "lpt4",        "lpt5",        "lpt6",        "lpt7",       "lpt8", "lpt9",
        "com\xC2\xB9", "com\xC2\xB2", "com\xC2\xB3", "lpt\xC2\xB9", "lpt\xC2\xB2", "lpt\xC2\xB3"};
    std::string s(stem);
    for (auto& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    for (auto n : names)
        if (s == n) return true;
    return false;
}

// The length of the UTF-8 sequence starting with lead, 0 if lead cannot start one.
std::size_t seq_len(unsigned char lead) {
    if (lead < 0x80) return 1;
    if ((lead & 0xE0) == 0xC0) return 2;
    if ((lead & 0xF0) == 0xE0) return 3;
    if ((lead & 0xF8) == 0xF0) return 4;
    return 0;
}

// The code point of the n-byte sequence at p, or -1 when it is not valid UTF-8 (overlong forms,
// surrogates and values above U+10FFFF are not).
long decode(const unsigned char* p, std::size_t n) {
    long cp = n == 1 ? p[0] : n == 2 ? (p[0] & 0x1F) : n == 3 ? (p[0] & 0x0F) : (p[0] & 0x07);
    for (std::size_t k = 1; k < n; ++k) {
        if ((p[k] & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    static constexpr long kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    return cp;
}

// Characters a file name must not carry: C0 and C1 controls, and the bidirectional controls that
// can make "gpj.exe" look like "exe.jpg" (U+061C, U+200E/F, U+202A-E, U+2066-9).
bool unsafe_code_point(long cp) {
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

// The longest prefix of s of at most max bytes that ends at a character boundary.
std::string_view cut(std::string_view s, std::size_t max) {
    if (s.size() <= max) return s;
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t n = seq_len(static_cast<unsigned char>(s[i]));
        if (n == 0) n = 1;
        if (i + n > max) break;
        i += n;
    }
    return s.substr(0, i);
}

// At most kMaxBytes, cut at a character boundary with the extension (up to 16 bytes) kept and no
// dot or space left at the end of the stem.
std::string fit(const std::string& out) {
    if (out.size() <= kMaxBytes) return out;
    auto ext_at = out.rfind('.');
    std::string ext = ext_at != std::string::npos && out.size() - ext_at <= 16 ? out.substr(ext_at) : "";
    std::string stem = std::string(cut(out.substr(0, out.size() - ext.size()), kMaxBytes - ext.size()));
    while (!stem.empty() && (stem.back() == '.' || stem.back() == ' ')) stem.pop_back();
    return (stem.empty() ? "attachment" : stem) + ext;
}

}  // namespace

std::string sanitize_filename(std::string_view name) {
    // Only the last path component: a name may not choose a directory.
    auto slash = name.find_last_of("/\\");
    if (slash != std::string_view::npos) name = name.substr(slash + 1);
    std::string out;
    for (std::size_t i = 0; i < name.size();) {
        unsigned char c = static_cast<unsigned char>(name[i]);
        std::size_t n = seq_len(c);
        const long cp =
            n > 0 && i + n <= name.size() ? decode(reinterpret_cast<const unsigned char*>(name.data() + i), n) : -1;
        if (cp < 0) {
            out += '_';
            ++i;
            continue;
        }
        if (n == 1) {
            bool bad = unsafe_code_point(cp) || c == '"' || c == '<' || c == '>' || c == ':' || c == '|' || c == '?' ||
                       c == '*' || c == '\'' || c == ';' || c == '%';
            out += bad ? '_' : static_cast<char>(c);
        } else if (unsafe_code_point(cp)) {
            out += '_';
        } else {
            out.append(name.substr(i, n));
        }
        i += n;
    }
    // No hidden files, no names Windows ends or refuses.
    while (!out.empty() && (out.front() == '.' || out.front() == ' ')) out.erase(out.begin());
    while (!out.empty() && (out.back() == '.' || out.back() == ' ')) out.pop_back();
    if (out.empty()) return "attachment";
    out = fit(out);
    // After the cut: "com³" followed by many spaces is "com³" once cut. The '_' keeps it unreserved
    // through a second cut (which keeps the front).
    if (reserved_windows_name(out.substr(0, out.find('.')))) out = fit("_" + out);
    return out;
}

}  // namespace mailward::message
