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

std::vector<std::pair<std::string, std::string>> auto_headers(const Brand& b) {
    return {{"Auto-Submitted", "auto-generated"},
            {"X-Auto-Response-Suppress", "All"},
            {"Content-Language", std::string(tag(b.language))}};
}

using common::html_escape;

// The brand above an HTML mail's content: the logo (by its URL on the portal) and the name, on
// the accent colour's rule.
std::string html_head(const Brand& b, std::string_view logo_url) {
    std::string logo;
    if (!logo_url.empty())
        logo = fmt::format(
            "<img src=\"{}\" alt=\"\" height=\"40\" style=\"height:40px;vertical-align:middle;margin-right:10px\">",
            html_escape(logo_url));
    return fmt::format(
        "<!doctype html><html lang=\"{}\"><body style=\"font-family:sans-serif;line-height:1.5\">"
        "<div style=\"border-top:4px solid {};padding:10px 0;margin-bottom:8px\">{}"
        "<strong style=\"font-size:1.1em;vertical-align:middle\">{}</strong></div>\r\n",
        tag(b.language), html_escape(b.color), logo, html_escape(b.organization));
}

// Below it: the sentence against phishing, the support contact, who sends.
std::string html_foot(const Brand& b) {
    const Texts& t = texts(b.language);
    const std::string org = html_escape(b.organization);
    std::string out = fmt::format(
        "<p style=\"border-left:4px solid {};padding:6px 10px;background:#f6f8fa\"><strong>{}</strong></p>\r\n",
        html_escape(b.color), fill(html_escape(t.never_password_mail), {{"org", org}}));
    out += "<p style=\"color:#555;font-size:.9em\">";
    if (!b.support_contact.empty())
        out += fmt::format("{} <a href=\"{}\">{}</a><br>", fill(html_escape(t.support), {{"org", org}}),
                           html_escape(support_href(b.support_contact)), html_escape(b.support_contact)) +
               "\r\n";
    out += fill(html_escape(t.sent_by), {{"org", org}}) + "</p></body></html>\r\n";
    return out;
}

std::string text_foot(const Brand& b) {
    const Texts& t = texts(b.language);
    std::string out = "\r\n" + fill(t.never_password_mail, {{"org", b.organization}}) + "\r\n";
    if (!b.support_contact.empty())
        out += fill(t.support, {{"org", b.organization}}) + " " + b.support_contact + "\r\n";
    return out + "\r\n-- \r\n" + fill(t.sent_by, {{"org", b.organization}}) + "\r\n";
}

}  // namespace

Result<std::string> compose_notice(const NoticeInput& in) {
    const Brand& b = in.brand;
    const Texts& t = texts(b.language);
    const std::string when = human_date(in.expires);
    message::ComposeInput m;
    m.from = in.from;
    m.to = in.to;
    m.subject = std::string(t.notice_subject);
    m.extra_headers = auto_headers(b);
    m.text = b.organization + "\r\n\r\n" + fill(t.notice_intro, {{"sender", in.sender_name}}) + "\r\n\r\n" +
             std::string(t.notice_open_here) + "\r\n" + in.link + "\r\n\r\n" +
             fill(t.notice_kept, {{"until", when}, {"to", in.to}}) + "\r\n\r\n" + std::string(t.notice_why) + "\r\n" +
             text_foot(b);
    m.html = html_head(b, in.logo_url) +
             fmt::format("<p>{}</p>\r\n", fill(html_escape(t.notice_intro),
                                               {{"sender", "<strong>" + html_escape(in.sender_name) + "</strong>"}})) +
             fmt::format(
                 "<p><a href=\"{}\" style=\"display:inline-block;padding:10px 16px;background:{};color:#fff;"
                 "text-decoration:none;border-radius:4px\">{}</a></p>\r\n",
                 html_escape(in.link), html_escape(b.color), html_escape(t.notice_button)) +
             fmt::format("<p>{}</p>",
                         fill(html_escape(t.notice_kept), {{"until", html_escape(when)}, {"to", html_escape(in.to)}})) +
             fmt::format("<p style=\"color:#555\">{}</p>\r\n", html_escape(t.notice_why)) + html_foot(b);
    return message::compose_message(m);
}

Result<std::string> compose_code_mail(const CodeMailInput& in) {
    const Brand& b = in.brand;
    const Texts& t = texts(b.language);
    const std::string minutes = std::to_string(in.valid_for.count());
    message::ComposeInput m;
    m.from = header_phrase(b.organization) + " <no-reply@" + in.hostname + ">";
    m.to = in.to;
    m.subject = std::string(t.code_subject);
    m.extra_headers = auto_headers(b);
    m.text = b.organization + "\r\n\r\n" + fill(t.code_line, {{"code", in.code}}) + "\r\n\r\n" +
             fill(t.code_valid, {{"minutes", minutes}}) + "\r\n" + text_foot(b);
    m.html = html_head(b, in.logo_url) +
             fmt::format("<p>{}</p>\r\n", fill(html_escape(t.code_line),
                                               {{"code", "<strong style=\"font-size:1.4em;letter-spacing:.1em\">" +
                                                             html_escape(in.code) + "</strong>"}})) +
             fmt::format("<p>{}</p>\r\n", fill(html_escape(t.code_valid), {{"minutes", minutes}})) + html_foot(b);
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
