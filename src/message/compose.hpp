// Composing a message (RFC 5322 + MIME) with GMime: CRLF line ends, encoded words for non-ASCII
// headers (RFC 2047), RFC 2231 file names, a 7-bit-safe transfer encoding per part;
// multipart/alternative for text + HTML, multipart/mixed with attachments. Inputs are the caller's
// (escrow's notices, a recipient's reply from the portal); addresses are parsed, not trusted.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "message/view.hpp"

namespace mailward::message {

struct ComposeInput {
    std::string from;  // "Name <addr>" or "addr" (UTF-8 display names allowed)
    std::string to;
    std::string subject;
    std::string date;         // RFC 5322 date; "" = now
    std::string message_id;   // without <>; "" = generated
    std::string in_reply_to;  // without <>; also becomes References
    std::vector<std::pair<std::string, std::string>> extra_headers;
    std::string text;                     // text/plain; charset=utf-8
    std::string html;                     // "" = none; else multipart/alternative
    std::vector<Attachment> attachments;  // -> multipart/mixed
};

// Errors: common::Errc::invalid_argument when from or to is not an address, or when a value GMime
// writes as given (message_id, in_reply_to, date, extra header names and values, attachment
// content_type / content_id) holds CR, LF or NUL, or a header name is not printable ASCII without ':'.
// The result has CRLF line ends only (a bare CR or LF GMime left is made CRLF); invalid_argument if
// it would hold a NUL (the SMTP client refuses those).
Result<std::string> compose_message(const ComposeInput& in);

}  // namespace mailward::message
