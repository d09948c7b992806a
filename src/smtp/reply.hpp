// SMTP replies (RFC 5321 section 4.2) with enhanced status codes (RFC 3463, RFC 2034): formatting
// for the server, and parsing of multi-line replies for the client. Pure: no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailward::smtp {

struct Reply {
    int code = 0;               // 200..599
    std::string enhanced;       // "5.1.1", "" when none
    std::vector<std::string> lines;  // text of each line, without code and enhanced code

    Reply() = default;
    Reply(int c, std::string enh, std::string text) : code(c), enhanced(std::move(enh)), lines{std::move(text)} {}

    bool positive() const { return code >= 200 && code < 400; }
    bool transient() const { return code >= 400 && code < 500; }
    bool permanent() const { return code >= 500; }
    // "250-first\r\n250 last\r\n" with the enhanced code on every line when set.
    std::string wire() const;
    // One line for logs: "550 5.1.1 text; more text".
    std::string summary() const;
};

// Incremental parser for the client side: feed lines (without CRLF) until a Reply is complete.
class ReplyParser {
public:
    enum class Status { need_more, done, error };
    Status feed(std::string_view line);
    Reply take();  // after done
private:
    Reply current_;
    bool started_ = false;
};

}  // namespace mailward::smtp
