// Reading a message (RFC 5322, MIME RFC 2045-2049) for a person: decoded headers (RFC 2047 encoded
// words), the text and HTML bodies in UTF-8 (charsets converted; invalid bytes replaced), and the
// attachments with decoded bytes and safe file names (RFC 2231 names decoded). Input is hostile:
// limits on parts and depth; nothing here renders or trusts the HTML (see portal's sanitizer).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace mailward::message {

enum class MessageErrc { ok = 0, unparsable = 1, too_many_parts, too_deep };
const boost::system::error_category& message_category() noexcept;
inline error_code make_error_code(MessageErrc e) noexcept { return {static_cast<int>(e), message_category()}; }

struct Attachment {
    std::string filename;      // sanitize_filename() of the part's name ("attachment-N.bin" if none)
    std::string content_type;  // "type/subtype", lower case
    std::string data;          // decoded bytes
    std::string content_id;    // without <>, "" if none
    bool inline_disposition = false;
};

struct MessageView {
    std::string from, to, cc, reply_to, subject, date, message_id;  // UTF-8; message_id without <>
    std::string text;  // the first text/plain body that is not an attachment ("" if none)
    std::string html;  // the first text/html body that is not an attachment, NOT sanitized
    std::vector<Attachment> attachments;
};

struct ParseLimits {
    std::size_t max_parts = 500;
    std::size_t max_depth = 32;
};

// Errors: unparsable (not a message), too_many_parts, too_deep.
Result<MessageView> parse_message(std::string_view rfc5322, const ParseLimits& limits = {});

// A file name safe on any system for Content-Disposition and downloads: valid UTF-8 kept; invalid
// sequences (overlong, surrogates, > U+10FFFF), C0/C1 and bidirectional controls, quotes and
// characters Windows refuses replaced by '_'; only the last path component; leading dots and
// trailing dots/spaces removed; reserved device names (CON, NUL, CONIN$, COM1, COM¹, ...) prefixed
// with '_'; at most 120 bytes, cut at a character boundary, the extension kept; never empty.
std::string sanitize_filename(std::string_view name);

}  // namespace mailward::message

namespace boost::system {
template <>
struct is_error_code_enum<mailward::message::MessageErrc> : std::true_type {};
}  // namespace boost::system
