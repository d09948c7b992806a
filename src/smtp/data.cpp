// DataDecoder: a byte-level state machine for the DATA phase of RFC 5321 (4.1.1.4 end of data,
// 4.5.2 transparency, 4.5.3.1.6 text line length) with the smuggling rule of CVE-2023-51766: a
// line starts only after CRLF, so "\n.\n", "\r\n.\n" or "\r.\r\n" never end the data. The state
// survives any split of the input into chunks. Input is untrusted.
#include "smtp/data.hpp"

#include <algorithm>
#include <cstring>

namespace mailward::smtp {
namespace {

constexpr std::uint64_t kMaxLine = 998;  // octets before CRLF (RFC 5322 2.1.1)

}  // namespace

void DataDecoder::store(std::string_view octets) {
    size_ += octets.size();
    if (too_large_) return;
    if (max_size_ != 0 && size_ > max_size_) {
        too_large_ = true;
        std::string().swap(body_);  // release what was kept: the message will be refused
        return;
    }
    body_.append(octets);
}

void DataDecoder::end_line() {
    if (line_length_ > kMaxLine) long_line_ = true;
    line_length_ = 0;
}

namespace {

// SWAR tests over 8 octets at a time: does any octet need a look (CR, LF, NUL, or >= 0x80)?
constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
inline std::uint64_t zero_octets(std::uint64_t w) { return (w - kOnes) & ~w & kHighs; }
inline bool needs_look(std::uint64_t w) {
    return ((zero_octets(w ^ (kOnes * '\r')) | zero_octets(w ^ (kOnes * '\n')) | zero_octets(w) | (w & kHighs))) != 0;
}

}  // namespace

// The output is the input minus stuffed dots and the end marker, so octets are stored as whole
// spans of the chunk ([span, i)), cut only where a dot is dropped and at the end of the chunk.
std::size_t DataDecoder::feed(std::string_view chunk) {
    const char* p = chunk.data();
    const std::size_t n = chunk.size();
    std::size_t i = 0;
    std::size_t span = 0;
    auto flush = [&](std::size_t to) {
        if (to > span) store(chunk.substr(span, to - span));
        span = to;
    };
    while (i < n && state_ != State::done) {
        const char c = p[i];
        switch (state_) {
            case State::text: {
                // The run of ordinary octets up to the next CR or LF, 8 at a time where possible.
                std::size_t j = i;
                for (;;) {
                    while (j + 8 <= n) {
                        std::uint64_t w;
                        std::memcpy(&w, p + j, 8);
                        if (needs_look(w)) break;
                        j += 8;
                    }
                    // Octet by octet through the word that needs a look (or the tail).
                    const std::size_t stop = std::min(n, j + 8);
                    bool line_break = false;
                    for (; j < stop; ++j) {
                        const auto u = static_cast<unsigned char>(p[j]);
                        if (u == '\r' || u == '\n') {
                            line_break = true;
                            break;
                        }
                        if (u == 0) nul_ = true;
                        if (u >= 0x80) eight_bit_ = true;
                    }
                    if (line_break || j == n) break;
                }
                line_length_ += j - i;
                i = j;
                if (i == n) break;
                if (p[i] == '\r') {
                    state_ = State::cr;
                } else {
                    bare_lf_ = true;  // not a line end: the next octet does not start a line
                    line_length_ += 1;
                }
                ++i;
                break;
            }
            case State::cr:  // the CR (already in the span) is kept either way
                if (c == '\n') {
                    end_line();
                    state_ = State::line_start;
                    ++i;
                } else {
                    bare_cr_ = true;
                    line_length_ += 1;
                    state_ = State::text;
                }
                break;
            case State::line_start:
                if (c == '.') {  // dropped: stuffing, or the start of the end marker
                    flush(i);
                    span = ++i;
                    state_ = State::dot;
                } else {
                    state_ = State::text;
                }
                break;
            case State::dot:
                if (c == '\r') {  // held back: part of the end marker if LF follows
                    flush(i);
                    span = ++i;
                    state_ = State::dot_cr;
                } else {
                    state_ = State::text;  // a stuffed dot (or a dot before a bare LF)
                }
                break;
            case State::dot_cr:
                if (c == '\n') {
                    span = ++i;
                    state_ = State::done;
                } else {
                    // ".<CR>x": the dot is dropped, the held CR is a bare CR.
                    flush(i);
                    store("\r");
                    bare_cr_ = true;
                    line_length_ += 1;
                    state_ = State::text;
                }
                break;
            case State::done: break;
        }
    }
    flush(i);
    return i;
}

}  // namespace mailward::smtp
