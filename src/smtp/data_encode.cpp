// DATA encoding for the client: see data_encode.hpp. The scan and the encoder skip runs of
// ordinary octets 8 at a time (SWAR, as the server's decoder in data.cpp does), so a clean body
// costs one read and, without a line starting with a dot, no copy at all.
#include "smtp/data_encode.hpp"

#include <cstdint>
#include <cstring>

namespace mailward::smtp {
namespace {

constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
inline std::uint64_t zero_octets(std::uint64_t w) { return (w - kOnes) & ~w & kHighs; }
// Does any of the 8 octets need a look: CR, LF or NUL?
inline bool needs_look(std::uint64_t w) {
    return (zero_octets(w ^ (kOnes * '\r')) | zero_octets(w ^ (kOnes * '\n')) | zero_octets(w)) != 0;
}

// The position of the next CR, LF or NUL at or after i (n when none).
inline std::size_t next_special(const char* p, std::size_t i, std::size_t n) {
    while (i + 8 <= n) {
        std::uint64_t w;
        std::memcpy(&w, p + i, 8);
        if (needs_look(w)) break;
        i += 8;
    }
    for (; i < n; ++i) {
        const char c = p[i];
        if (c == '\r' || c == '\n' || c == '\0') return i;
    }
    return n;
}

// Calls line_end(at, len) for each line break (CRLF: len 2; bare CR or LF: len 1), nul(at) for NUL.
template <typename LineEnd, typename Nul>
void walk(std::string_view body, LineEnd&& line_end, Nul&& nul) {
    const char* p = body.data();
    const std::size_t n = body.size();
    for (std::size_t i = next_special(p, 0, n); i < n; i = next_special(p, i, n)) {
        if (p[i] == '\0') {
            nul(i);
            ++i;
        } else if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') {
            line_end(i, 2);
            i += 2;
        } else {
            line_end(i, 1);
            ++i;
        }
    }
}

}  // namespace

BodyScan scan_body(std::string_view body) {
    BodyScan s;
    if (!body.empty() && body.front() == '.') s.dot_line = true;
    walk(
        body,
        [&](std::size_t at, std::size_t len) {
            if (len != 2) s.crlf_only = false;
            if (at + len < body.size() && body[at + len] == '.') s.dot_line = true;
        },
        [&](std::size_t) { s.nul = true; });
    s.ends_crlf = body.ends_with("\r\n");
    return s;
}

void encode_data(std::string_view body, std::string& out) {
    out.reserve(out.size() + body.size() + body.size() / 64 + 8);
    std::size_t span = 0;  // start of the octets not yet copied
    if (!body.empty() && body.front() == '.') out.push_back('.');
    bool ended = body.empty();  // the output so far ends with a line break
    walk(
        body,
        [&](std::size_t at, std::size_t len) {
            out.append(body.data() + span, at - span);
            out += "\r\n";
            span = at + len;
            if (span < body.size() && body[span] == '.') out.push_back('.');
            ended = span == body.size();
        },
        [](std::size_t) {});
    if (span < body.size()) {
        out.append(body.data() + span, body.size() - span);
        ended = false;
    }
    if (!ended || body.empty()) out += "\r\n";
    out += ".\r\n";
}

bool normalise_line_ends(std::string& body) {
    const BodyScan s = scan_body(body);
    if (s.nul) return false;
    if (s.crlf_only) return true;
    std::string out;
    out.reserve(body.size() + body.size() / 32 + 2);
    std::size_t span = 0;
    walk(
        body,
        [&](std::size_t at, std::size_t len) {
            out.append(body.data() + span, at - span);
            out += "\r\n";
            span = at + len;
        },
        [](std::size_t) {});
    out.append(body.data() + span, body.size() - span);
    body = std::move(out);
    return true;
}

}  // namespace mailward::smtp
