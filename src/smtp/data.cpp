// DataDecoder: a byte-level state machine for the DATA phase of RFC 5321 (4.1.1.4 end of data,
// 4.5.2 transparency, 4.5.3.1.6 text line length) with the smuggling rule of CVE-2023-51766: a
// line starts only after CRLF, so "\n.\n", "\r\n.\n" or "\r.\r\n" never end the data. The state
// survives any split of the input into chunks. Input is untrusted.
#include "smtp/data.hpp"

namespace mailward::smtp {
namespace {

constexpr std::uint64_t kMaxLine = 998;  // octets before CRLF (RFC 5322 2.1.1)

bool special(char c) { return c == '\r' || c == '\n'; }

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

// Octets other than CR and LF inside a line.
void DataDecoder::text_run(std::string_view run) {
    for (char ch : run) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == 0) nul_ = true;
        if (c >= 0x80) eight_bit_ = true;
    }
    line_length_ += run.size();
    store(run);
}

void DataDecoder::step(char c) {
    switch (state_) {
        case State::line_start:
            if (c == '.') {
                state_ = State::dot;
                return;
            }
            state_ = State::text;
            step(c);
            return;
        case State::dot:
            if (c == '\r') {
                state_ = State::dot_cr;
                return;
            }
            state_ = State::text;  // a stuffed dot (or a dot before a bare LF): drop it
            step(c);
            return;
        case State::dot_cr:
            if (c == '\n') {
                state_ = State::done;
                return;
            }
            state_ = State::text;  // ".<CR>x": the dot is dropped, the CR is a bare CR
            step('\r');
            step(c);
            return;
        case State::text:
            if (c == '\r') {
                state_ = State::cr;
            } else if (c == '\n') {
                bare_lf_ = true;  // not a line end: the next octet does not start a line
                line_length_ += 1;
                store("\n");
            } else {
                text_run(std::string_view(&c, 1));
            }
            return;
        case State::cr:
            if (c == '\n') {
                store("\r\n");
                end_line();
                state_ = State::line_start;
                return;
            }
            bare_cr_ = true;
            line_length_ += 1;
            store("\r");
            state_ = State::text;
            step(c);
            return;
        case State::done:
            return;
    }
}

std::size_t DataDecoder::feed(std::string_view chunk) {
    std::size_t i = 0;
    while (i < chunk.size() && state_ != State::done) {
        if (state_ == State::text && !special(chunk[i])) {
            // Fast path: the run of ordinary octets up to the next CR or LF.
            std::size_t j = i;
            while (j < chunk.size() && !special(chunk[j])) ++j;
            text_run(chunk.substr(i, j - i));
            i = j;
            continue;
        }
        step(chunk[i]);
        ++i;
    }
    return i;
}

}  // namespace mailward::smtp
