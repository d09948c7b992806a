// The mail escrow itself sends: the notice that a sealed message waits (a generic subject, the
// sender's name, the expiry date, the portal link, short help; text and HTML; NOTHING of the
// message), the one-time code email, and a recipient's secure reply. Composed with src/message
// (RFC 5322 + MIME); the caller queues them for delivery like any other message. The notice and
// the code mail carry the brand (brand.hpp) in its language, and say that nobody asks for a
// password; every value from the config or the message is HTML-escaped or header-quoted.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "escrow/brand.hpp"
#include "message/compose.hpp"

namespace mailward::escrow {

struct NoticeInput {
    std::string from;         // the original From header (display form), or the envelope sender
    std::string sender_name;  // how the text names the sender
    std::string to;           // the recipient address
    std::string link;         // the portal URL with the token
    std::chrono::system_clock::time_point expires{};
    std::string hostname;  // for the Message-ID
    Brand brand;
    std::string logo_url;  // the portal's https URL of the logo, "" for none
};
Result<std::string> compose_notice(const NoticeInput& in);

struct CodeMailInput {
    std::string to;
    std::string code;
    std::chrono::minutes valid_for{15};
    std::string hostname;  // From: "ORGANIZATION" <no-reply@hostname>
    Brand brand;
    std::string logo_url;  // as in NoticeInput
};
Result<std::string> compose_code_mail(const CodeMailInput& in);

struct ReplyMailInput {
    std::string from;         // the recipient who replies (address)
    std::string to;           // the original sender (display form)
    std::string subject;      // the original subject ("Re: " is added once)
    std::string in_reply_to;  // the original Message-ID without <>, "" if none
    std::string text;
    std::vector<message::Attachment> attachments;
    std::string hostname;
};
Result<std::string> compose_reply(const ReplyMailInput& in);

}  // namespace mailward::escrow
