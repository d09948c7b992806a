// Who the mail escrow sends and the portal shows as themselves ([branding], docs/design.md
// "Branding and languages"), and every text the notice, the code mail and the portal pages say,
// one table per language (texts_en.cpp, texts_de.cpp). Placeholders are names in braces
// ("{sender}") that fill() substitutes; callers escape the text and the values (HTML) first.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace mailward::escrow {

enum class Lang { en, de };
inline constexpr Lang kLanguages[] = {Lang::en, Lang::de};  // English first: the fallback

std::string_view tag(Lang l);                           // "en", "de" (BCP 47)
std::optional<Lang> language_of(std::string_view tag);  // a primary tag we have texts for, any case

// Where the portal serves [branding] logo_file.
inline constexpr std::string_view kLogoPath = "/brand/logo";

struct Brand {
    std::string organization = "localhost";  // [branding] organization, else [server] hostname
    std::string color = "#0b3d91";           // [branding] color, "#rrggbb"
    std::string support_contact;             // an e-mail address or an https:// URL; "" = none
    bool has_logo = false;                   // the portal serves one at kLogoPath
    Lang language = Lang::en;                // the mails' language ([branding] language)
};
// The support contact as a link target: "mailto:ADDRESS" or the URL itself ("" for none).
std::string support_href(std::string_view contact);
// A name for a mail header's display name: control characters dropped, '"' and '\' escaped,
// quoted ("\"Example Ltd\"").
std::string header_phrase(std::string_view name);

// A page's title and its one paragraph.
struct PageText {
    std::string_view title, text;
};

struct Texts {
    // On all three: the sentence against phishing, the support contact, who sends.
    std::string_view never_password_mail;    // {org}
    std::string_view never_password_portal;  // {org}
    std::string_view support;                // "Questions? Contact {org}:" before the contact
    std::string_view sent_by;                // {org}

    // The notice.
    std::string_view notice_subject;
    std::string_view notice_intro;  // {sender}
    std::string_view notice_open_here;
    std::string_view notice_button;
    std::string_view notice_kept;  // {until} {to}
    std::string_view notice_why;

    // The one-time code mail.
    std::string_view code_subject;
    std::string_view code_line;   // {code}
    std::string_view code_valid;  // {minutes}

    // The portal's frame and pages.
    std::string_view portal_name;
    std::string_view footer;
    std::string_view landing_title, landing_h1;
    std::string_view landing_text;  // {sender} {until}
    std::string_view landing_code_text, landing_locked, send_code, have_code;
    std::string_view code_title, code_h1, code_label, open_button, code_help, send_new_code;
    std::string_view code_on_way, code_not_accepted, code_not_accepted_hint, code_exhausted, code_locked;
    std::string_view no_subject, from, to, cc, date, available_until;
    std::string_view images_blocked;                                                      // {count}
    std::string_view too_complex, message_label, message_body_title, attachments, bytes;  // bytes: {count}
    std::string_view reply_heading, reply_label, attach_label, send_reply, sign_out, reply_sent;

    // The portal's other answers.
    PageText home, not_found, link_not_valid, not_allowed, gone, bad_request, refused_origin, form_expired_link,
        form_expired_session, signed_out, signed_out_done, trouble, unavailable, unreadable, no_attachment, empty_reply,
        no_reply_possible, request_too_large;
    PageText reply_too_large;  // text: {size}
    PageText reply_total;
    PageText reply_rate;                     // text: {minutes}
    std::string_view reply_rate_one_minute;  // the text when it is 1 minute
};

const Texts& texts(Lang l);

// fmt::format of a text with its named arguments; a broken text gives the text itself.
std::string fill(std::string_view text, std::initializer_list<std::pair<std::string_view, std::string_view>> args);

}  // namespace mailward::escrow
