// SMTP replies (RFC 5321 section 4.2) with enhanced status codes (RFC 3463, RFC 2034): formatting
// for the server, and parsing of multi-line replies for the client. Pure: no I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailward::smtp {

struct Reply {
    int code = 0;                    // 200..599
    std::string enhanced;            // "5.1.1", "" when none
    std::vector<std::string> lines;  // text of each line, without code and enhanced code

    Reply() = default;
    Reply(int c, std::string enh, std::string text) : code(c), enhanced(std::move(enh)), lines{std::move(text)} {}

    bool positive() const { return code >= 200 && code < 400; }
    bool transient() const { return code >= 400 && code < 500; }
    bool permanent() const { return code >= 500; }
    // "250-first\r\n250 last\r\n" with the enhanced code on every line when set. No lines gives one
    // line with the code alone. CR, LF and NUL inside a text are replaced by spaces so that text
    // carrying client data cannot inject reply lines. The code must be 200..599 (aborts otherwise).
    std::string wire() const;
    // One line for logs: "550 5.1.1 text; more text".
    std::string summary() const;
};

// Incremental parser for the client side: feed lines (without CRLF) until a Reply is complete.
// A line is "NNN-text" (more follow) or "NNN text" / "NNN" (last); every line must carry the same
// code, 2xx..5xx. An enhanced code "c.s.d " whose class matches the reply's becomes
// Reply::enhanced (the first one seen) and is removed from every line that carries that same code.
// error: garbage, a code change, a NUL/CR/LF in a line, or more than kMaxLines lines; the parser
// then resets, as it does after take(). Feeding after done without take() starts the next reply.
class ReplyParser {
  public:
    enum class Status { need_more, done, error };
    static constexpr std::size_t kMaxLines = 1000;
    Status feed(std::string_view line);
    Reply take();  // after done
  private:
    Reply current_;
    bool started_ = false;
    bool done_ = false;
};

}  // namespace mailward::smtp
