// Notice, code and reply messages (see notice.hpp). The notice's link is the only secret in it;
// its subject is the same for every message, so it says nothing about the content.
#include "escrow/notice.hpp"

#include <fmt/format.h>

#include "common/html_escape.hpp"
#include "common/timefmt.hpp"

namespace mailward::escrow {
namespace {

// "Monday, 28 December 2026 at 14:05 UTC" is long; the date and time in ISO form are unambiguous.
std::string human_date(std::chrono::system_clock::time_point t) {
    std::string iso = common::iso8601(t);  // 2026-12-28T14:05:00Z
    if (iso.size() >= 16) return iso.substr(0, 10) + " " + iso.substr(11, 5) + " UTC";
    return iso;
}

std::vector<std::pair<std::string, std::string>> auto_headers() {
    return {{"Auto-Submitted", "auto-generated"}, {"X-Auto-Response-Suppress", "All"}};
}

}  // namespace

Result<std::string> compose_notice(const NoticeInput& in) {
    const std::string when = human_date(in.expires);
    message::ComposeInput m;
    m.from = in.from;
    m.to = in.to;
    m.subject = "A secure message is waiting for you";
    m.extra_headers = auto_headers();
    m.text = fmt::format(
        "{} sent you a secure message.\r\n\r\n"
        "Open it here:\r\n{}\r\n\r\n"
        "The message is kept encrypted until {}. When you open the link, you will be asked to\r\n"
        "request a one-time code, which is sent to this address ({}).\r\n\r\n"
        "Why: the message could not be delivered to your mail server over an encrypted connection,\r\n"
        "so it was not sent in the clear. If you did not expect it, you can ignore this email.\r\n",
        in.sender_name, in.link, when, in.to);
    m.html = fmt::format(
        "<!doctype html><html><body style=\"font-family:sans-serif;line-height:1.5\">"
        "<p><strong>{}</strong> sent you a secure message.</p>"
        "<p><a href=\"{}\" style=\"display:inline-block;padding:10px 16px;background:#1a56db;color:#fff;"
        "text-decoration:none;border-radius:4px\">Open the secure message</a></p>"
        "<p>The message is kept encrypted until {}. When you open the link, you will be asked to request "
        "a one-time code, which is sent to this address ({}).</p>"
        "<p style=\"color:#555\">The message could not be delivered to your mail server over an encrypted "
        "connection, so it was not sent in the clear. If you did not expect it, you can ignore this email.</p>"
        "</body></html>",
        common::html_escape(in.sender_name), common::html_escape(in.link), common::html_escape(when),
        common::html_escape(in.to));
    return message::compose_message(m);
}

Result<std::string> compose_code_mail(const CodeMailInput& in) {
    message::ComposeInput m;
    m.from = "Secure mail <no-reply@" + in.hostname + ">";
    m.to = in.to;
    m.subject = "Your one-time code";
    m.extra_headers = auto_headers();
    m.text = fmt::format(
        "Your one-time code is: {}\r\n\r\n"
        "It is valid for {} minutes and can be used once. If you did not ask for it, ignore this email.\r\n",
        in.code, in.valid_for.count());
    return message::compose_message(m);
}

Result<std::string> compose_reply(const ReplyMailInput& in) {
    message::ComposeInput m;
    m.from = in.from;
    m.to = in.to;
    std::string_view subject = in.subject;
    const bool has_re = subject.size() >= 3 && (subject[0] == 'R' || subject[0] == 'r') &&
                        (subject[1] == 'E' || subject[1] == 'e') && subject[2] == ':';
    m.subject = has_re ? std::string(subject) : "Re: " + std::string(subject);
    m.in_reply_to = in.in_reply_to;
    m.text = in.text;
    m.attachments = in.attachments;
    m.extra_headers = {{"X-Mailward-Secure-Reply", "yes"}};
    return message::compose_message(m);
}

}  // namespace mailward::escrow
