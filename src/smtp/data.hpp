// DATA phase decoder for the server (RFC 5321 4.1.1.4, 4.5.2 dot-stuffing): consumes the octets
// that follow the 354 reply, undoes dot-stuffing and stops right after the end-of-data sequence.
// Only <CRLF>.<CRLF> ends the data; bare CR and bare LF are recorded so the server can refuse the
// message (SMTP smuggling, CVE-2023-51766). Input is untrusted. Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mailward::smtp {

class DataDecoder {
  public:
    enum class Status { need_more, done };

    // max_size: largest body (after dot-unstuffing) that is kept; 0 = no limit. Past it the body is
    // dropped and only counted.
    explicit DataDecoder(std::uint64_t max_size = 0) : max_size_(max_size) {}

    // Octets that come before the body in take_body() (the Received: header the server adds),
    // placed first so the body is never copied to make room; not counted by size(). Call before
    // the first feed().
    void set_prefix(std::string prefix) { body_ = std::move(prefix); }

    // Consumes octets of chunk and returns how many; less than chunk.size() only when the end of
    // data was reached (the rest belongs to the next command). Returns 0 once done.
    std::size_t feed(std::string_view chunk);

    Status status() const { return state_ == State::done ? Status::done : Status::need_more; }
    bool done() const { return state_ == State::done; }

    // The prefix and the message with CRLF line endings, the final CRLF included; moved out (call
    // once, after done). Empty when too_large().
    std::string take_body() { return std::move(body_); }
    std::string body() { return take_body(); }

    std::uint64_t size() const { return size_; }   // body octets seen, also past the limit
    bool too_large() const { return too_large_; }  // size() > max_size
    bool long_line() const { return long_line_; }  // a line over 998 octets before its CRLF
    bool bare_lf() const { return bare_lf_; }      // LF not preceded by CR
    bool bare_cr() const { return bare_cr_; }      // CR not followed by LF
    bool nul() const { return nul_; }              // a NUL octet
    bool eight_bit() const { return eight_bit_; }  // an octet >= 0x80 (needs 8BITMIME)

  private:
    enum class State {
        line_start,  // after CRLF (or at the very beginning)
        dot,         // "." at line start, not yet known to be stuffing or the end
        dot_cr,      // ".<CR>" at line start
        text,        // inside a line
        cr,          // CR inside a line, waiting for LF
        done,
    };
    void store(std::string_view octets);
    void end_line();

    std::uint64_t max_size_;
    State state_ = State::line_start;
    std::string body_;
    std::uint64_t size_ = 0;
    std::uint64_t line_length_ = 0;
    bool too_large_ = false;
    bool long_line_ = false;
    bool bare_lf_ = false;
    bool bare_cr_ = false;
    bool nul_ = false;
    bool eight_bit_ = false;
};

}  // namespace mailward::smtp
