// Every English text of the notice, the code mail and the portal (brand.hpp says how they are
// filled). The fallback language: the portal shows these when the browser asks for nothing we have.
#include "escrow/brand.hpp"

namespace mailward::escrow::detail {

extern const Texts kEnglish;
const Texts kEnglish{
    .never_password_mail =
        "This message never asks for your password. {org} will never ask for it, neither in mail nor on the "
        "portal.",
    .never_password_portal =
        "{org} never asks for your password, neither in mail nor on this portal: you sign in with a one-time code "
        "sent to you.",
    .support = "Questions? Contact {org}:",
    .sent_by = "Sent by the secure mail service of {org}.",

    .notice_subject = "A secure message is waiting for you",
    .notice_intro = "{sender} sent you a secure message.",
    .notice_open_here = "Open it here:",
    .notice_button = "Open the secure message",
    .notice_kept =
        "The message is kept encrypted until {until}. When you open the link, you will be asked to request a "
        "one-time code, which is sent to this address ({to}).",
    .notice_why =
        "The message could not be delivered to your mail server over an encrypted connection, so it was not sent "
        "in the clear. If you did not expect it, you can ignore this email.",

    .code_subject = "Your one-time code",
    .code_line = "Your one-time code is: {code}",
    .code_valid =
        "It is valid for {minutes} minutes and can be used once. If you did not ask for it, ignore this email.",

    .portal_name = "Secure message portal",
    .footer = "This page keeps no copy of the message on your device. Sign out when you are done.",
    .landing_title = "Secure message",
    .landing_h1 = "You have a secure message",
    .landing_text = "{sender} sent you a message that is kept encrypted here until {until}.",
    .landing_code_text = "To read it, ask for a one-time code. It is sent to the address this message was for.",
    .landing_locked =
        "Too many wrong codes were entered. A new code you ask for now is a longer one; it works at once.",
    .send_code = "Send me a code",
    .have_code = "Already have a code?",
    .code_title = "Enter your code",
    .code_h1 = "Enter your one-time code",
    .code_label = "One-time code",
    .open_button = "Open the message",
    .code_help =
        "Codes are valid for 15 minutes and work once. No code? Check your spam folder, or ask for a new one (at "
        "most 3 in 10 minutes).",
    .send_new_code = "Send a new code",
    .code_on_way = "If this link is valid, a one-time code is on its way to the address the message was sent to.",
    .code_not_accepted = "That code was not accepted.",
    .code_not_accepted_hint = "That code was not accepted. Check it, or ask for a new one.",
    .code_exhausted = "This code is locked after too many wrong tries. Ask for a new code.",
    .code_locked =
        "Too many wrong codes were entered for this message, so short codes no longer work for now. Ask for a new "
        "code: it will be a longer one, sent to the address this message was for, and it works at once.",
    .no_subject = "(no subject)",
    .from = "From",
    .to = "To",
    .cc = "Cc",
    .date = "Date",
    .available_until = "Available until",
    .images_blocked = "{count} remote image(s) were not loaded, to protect your privacy.",
    .too_complex =
        "The formatted version of this message is too complex to show safely; its plain text is shown instead.",
    .message_label = "Message",
    .message_body_title = "Message body",
    .attachments = "Attachments",
    .bytes = "({count} bytes)",
    .reply_heading = "Reply securely",
    .reply_label = "Your reply",
    .attach_label = "Attach files (up to 10 MB in all)",
    .send_reply = "Send reply",
    .sign_out = "Sign out",
    .reply_sent = "Your reply was sent.",

    .home = {"Secure message portal", "Open the link in the email you received to read your secure message."},
    .not_found = {"Not found", "There is nothing here."},
    .link_not_valid = {"Link not valid", "This link is not valid. Check that it was copied completely."},
    .not_allowed = {"Not allowed", "This request is not allowed here."},
    .gone = {"Message no longer available",
             "This message has expired or was withdrawn by its sender. Ask the sender to send it again."},
    .bad_request = {"Bad request", "The form could not be read."},
    .refused_origin = {"Request refused", "This form must be sent from the portal's own pages."},
    .form_expired_link = {"Request refused", "This form has expired. Open the link in your email again."},
    .form_expired_session = {"Request refused", "This form has expired. Reload the page and try again."},
    .signed_out = {"Signed out", "Your session has ended. Open the link in your email to sign in again."},
    .signed_out_done = {"Signed out", "You are signed out. You can close this page."},
    .trouble = {"Temporary problem", "The portal could not complete this request. Please try again in a minute."},
    .unavailable = {"Temporarily unavailable",
                    "The portal cannot save anything right now. Please try again in a few minutes."},
    .unreadable = {"Message unreadable", "The message could not be displayed."},
    .no_attachment = {"Not found", "There is no such attachment."},
    .empty_reply = {"Empty reply", "Write a reply or attach a file."},
    .no_reply_possible = {"No reply possible", "This message has no address to reply to."},
    .request_too_large = {"Request too large", "This form cannot be that large."},
    .reply_too_large = {"Reply too large", "The reply and its files may be at most {size}."},
    .reply_total = {"Reply not sent",
                    "The replies to this message have reached their total size limit. Please contact the sender "
                    "another way."},
    .reply_rate = {"Reply not sent",
                   "You have sent as many replies to this message as allowed for now. You can reply again in "
                   "{minutes} minutes."},
    .reply_rate_one_minute =
        "You have sent as many replies to this message as allowed for now. You can reply again in 1 minute.",
};

}  // namespace mailward::escrow::detail
