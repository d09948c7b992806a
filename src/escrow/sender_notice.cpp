// The sender's escrow notice (see sender_notice.hpp): text only, nothing of the original's content.
#include "escrow/sender_notice.hpp"

#include <fmt/format.h>

#include "common/timefmt.hpp"
#include "message/compose.hpp"

namespace mailward::escrow {
namespace {

// Keeps a value on one line (the reason and addresses come from elsewhere).
std::string one_line(std::string s) {
    for (auto& c : s)
        if (c == '\r' || c == '\n' || c == '\t') c = ' ';
    return s;
}

}  // namespace

Result<std::string> compose_sender_notice(const SenderNoticeInput& in) {
    const std::string iso = common::iso8601(in.expires);
    const std::string when = iso.size() >= 16 ? iso.substr(0, 10) + " " + iso.substr(11, 5) + " UTC" : iso;
    const std::string which = in.message_id.empty() ? "" : " <" + one_line(in.message_id) + ">";
    message::ComposeInput m;
    m.from = "Mail Delivery System <MAILER-DAEMON@" + in.hostname + ">";
    m.to = in.to;
    const std::string rcpt = one_line(in.recipient);
    m.subject = "Your message to " + rcpt + " went through the secure portal";
    m.extra_headers = {{"Auto-Submitted", "auto-generated"}, {"X-Auto-Response-Suppress", "All"}};
    if (!in.message_id.empty()) m.in_reply_to = in.message_id;
    m.text = fmt::format(
        "Your message{} to {} could not be delivered to the recipient's mail server\r\n"
        "over a connection that meets the required encryption, so it was not sent in the clear.\r\n\r\n"
        "Instead it is kept encrypted here, and {} was sent a link to read it in the\r\n"
        "secure web portal (with a one-time code sent to that address). The link works until {}.\r\n"
        "You do not need to send the message again.\r\n\r\n"
        "Why: {}\r\n\r\n"
        "For your administrator: queue id {}, escrow id {}.\r\n",
        which, rcpt, rcpt, when, one_line(in.reason), in.queue_id, in.escrow_id);
    return message::compose_message(m);
}

Result<std::string> compose_receipt(const ReceiptInput& in) {
    const std::string iso = common::iso8601(in.at);
    const std::string when = iso.size() >= 16 ? iso.substr(0, 10) + " " + iso.substr(11, 5) + " UTC" : iso;
    const std::string which = in.message_id.empty() ? "" : " <" + one_line(in.message_id) + ">";
    const std::string rcpt = one_line(in.recipient);
    const bool read = in.kind == ReceiptInput::Kind::read;
    message::ComposeInput m;
    m.from = "Mail Delivery System <MAILER-DAEMON@" + in.hostname + ">";
    m.to = in.to;
    m.subject = read ? "Read: your secure message to " + rcpt : "Expired: your secure message to " + rcpt;
    m.extra_headers = {{"Auto-Submitted", "auto-generated"}, {"X-Auto-Response-Suppress", "All"}};
    if (!in.message_id.empty()) m.in_reply_to = in.message_id;
    if (read) {
        m.text = fmt::format(
            "Your message{} to {}, kept in the secure portal, was opened by the recipient\r\n"
            "on {}.\r\n\r\nEscrow id {} (for your administrator).\r\n",
            which, rcpt, when, in.escrow_id);
    } else {
        m.text = fmt::format(
            "Your message{} to {}, kept in the secure portal, expired on {}\r\n"
            "and can no longer be read; its key has been destroyed. {}\r\n\r\n"
            "Escrow id {} (for your administrator).\r\n",
            which, rcpt, when,
            in.was_read ? "The recipient had opened it before."
                        : "The recipient never opened it: send it again another way if it still matters.",
            in.escrow_id);
    }
    return message::compose_message(m);
}

}  // namespace mailward::escrow
