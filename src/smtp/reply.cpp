// SMTP replies (RFC 5321 4.2, 4.2.1 multi-line form) carrying enhanced status codes (RFC 2034 3,
// RFC 3463 2: class.subject.detail). Reply::wire formats what the server sends; ReplyParser reads
// what a remote server sends, which is untrusted and may be garbage.
#include "smtp/reply.hpp"

#include <cstdlib>

namespace mailward::smtp {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Text with CR, LF and NUL turned into spaces.
void append_clean(std::string& out, std::string_view text) {
    for (char c : text) out.push_back(c == '\r' || c == '\n' || c == '\0' ? ' ' : c);
}

// Length of "c.s.d" at the start of text when it is an enhanced code of class cls followed by SP or
// the end of the line (RFC 3463: subject and detail are 1*3digit); 0 otherwise.
std::size_t enhanced_length(std::string_view text, char cls) {
    if (text.size() < 5 || text[0] != cls || text[1] != '.') return 0;
    std::size_t i = 2;
    for (int part = 0; part < 2; ++part) {
        const std::size_t start = i;
        while (i < text.size() && is_digit(text[i]) && i - start < 4) ++i;
        if (i == start || i - start > 3) return 0;
        if (part == 0) {
            if (i >= text.size() || text[i] != '.') return 0;
            ++i;
        }
    }
    return i == text.size() || text[i] == ' ' ? i : 0;
}

}  // namespace

std::string Reply::wire() const {
    if (code < 200 || code > 599) {
        std::abort();  // a reply without a valid code is a programming error, not a protocol one
    }
    const std::string num = std::to_string(code);
    std::string out;
    const std::size_t n = lines.empty() ? 1 : lines.size();
    for (std::size_t i = 0; i < n; ++i) {
        const std::string_view text = lines.empty() ? std::string_view() : std::string_view(lines[i]);
        out += num;
        const bool last = i + 1 == n;
        if (enhanced.empty() && text.empty()) {
            if (!last) out += '-';
        } else {
            out += last ? ' ' : '-';
            if (!enhanced.empty()) {
                append_clean(out, enhanced);
                if (!text.empty()) out += ' ';
            }
            append_clean(out, text);
        }
        out += "\r\n";
    }
    return out;
}

std::string Reply::summary() const {
    std::string out = std::to_string(code);
    if (!enhanced.empty()) out += " " + enhanced;
    std::string text;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (i != 0) text += "; ";
        append_clean(text, lines[i]);
    }
    if (!text.empty()) out += " " + text;
    return out;
}

ReplyParser::Status ReplyParser::feed(std::string_view line) {
    if (done_) take();
    const auto fail = [this] {
        take();
        return Status::error;
    };
    // Reply-code = %x32-35 %x30-35 %x30-39
    if (line.size() < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' || !is_digit(line[2])) {
        return fail();
    }
    const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    bool last = true;
    std::string_view text;
    if (line.size() > 3) {
        if (line[3] != ' ' && line[3] != '-') return fail();
        last = line[3] == ' ';
        text = line.substr(4);
    }
    if (text.find_first_of(std::string_view("\0\r\n", 3)) != std::string_view::npos) return fail();
    if (started_ && code != current_.code) return fail();
    if (current_.lines.size() >= kMaxLines) return fail();
    if (!started_) {
        current_.code = code;
        started_ = true;
    }
    // The first enhanced code found is the reply's; it is removed from each line that repeats it,
    // and a line with a different one keeps it as text so that nothing is lost.
    if (const std::size_t n = enhanced_length(text, line[0])) {
        if (current_.enhanced.empty()) current_.enhanced = std::string(text.substr(0, n));
        if (text.substr(0, n) == current_.enhanced) {
            text.remove_prefix(n);
            if (!text.empty()) text.remove_prefix(1);
        }
    }
    current_.lines.emplace_back(text);
    if (!last) return Status::need_more;
    done_ = true;
    return Status::done;
}

Reply ReplyParser::take() {
    Reply r = std::move(current_);
    current_ = Reply();
    started_ = false;
    done_ = false;
    return r;
}

}  // namespace mailward::smtp
