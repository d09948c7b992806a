// Builds RFC 3464 notifications (bounces, delays, relayed): see dsn.hpp.
#include "delivery/dsn.hpp"

#include "common/ids.hpp"
#include "common/timefmt.hpp"
#include "smtp/data_encode.hpp"

namespace mailward::delivery {
namespace {

// The header block of a CRLF message (up to, not including, the empty line).
std::string headers_of(const std::string& body) {
    auto end = body.find("\r\n\r\n");
    return end == std::string::npos ? body : body.substr(0, end + 2);
}

// Keeps header field values on one line: CR and LF become spaces.
std::string one_line(std::string s) {
    for (auto& c : s) {
        if (c == '\r' || c == '\n') c = ' ';
    }
    return s;
}

}  // namespace

std::string_view to_string(DsnAction a) {
    switch (a) {
        case DsnAction::failed: return "failed";
        case DsnAction::delayed: return "delayed";
        case DsnAction::relayed: return "relayed";
    }
    return "failed";
}

bool wants_dsn(const store::Envelope& env, const store::Recipient& r, DsnAction action) {
    if (env.sender.empty()) return false;  // never notify the null sender
    if (r.notify & store::notify_never) return false;
    switch (action) {
        case DsnAction::failed: return r.notify == 0 || (r.notify & store::notify_failure) != 0;
        case DsnAction::delayed: return r.notify == 0 || (r.notify & store::notify_delay) != 0;
        case DsnAction::relayed: return (r.notify & store::notify_success) != 0;
    }
    return false;
}

bool original_is_protected(const store::Envelope& env) { return env.requiretls || env.sender_mode != "opportunistic"; }

std::optional<store::StoredMessage> make_dsn(const store::Envelope& env, const std::string& original_body,
                                             const std::vector<DsnRecipient>& entries, const DsnOptions& opt) {
    std::vector<const DsnRecipient*> due;
    bool any_failed = false, any_delayed = false;
    for (const auto& f : entries) {
        if (f.index < env.recipients.size() && wants_dsn(env, env.recipients[f.index], f.action)) {
            due.push_back(&f);
            any_failed = any_failed || f.action == DsnAction::failed;
            any_delayed = any_delayed || f.action == DsnAction::delayed;
        }
    }
    if (due.empty()) return std::nullopt;
    const std::string& hostname = opt.hostname;
    const auto now = opt.now;

    store::StoredMessage m;
    auto& b = m.envelope;
    b.id = common::new_queue_id(now);
    b.sender = "";
    store::Recipient to;
    to.address = env.sender;
    to.next_attempt = now;
    b.recipients.push_back(to);
    b.body_type = store::BodyType::eight_bit_mime;
    b.smtputf8 = env.smtputf8;
    b.sender_mode = env.sender_mode;  // it carries the original's headers: it keeps its protection
    // RFC 8689 4.4 (and 5): the notification of a REQUIRETLS message is itself sent with
    // REQUIRETLS; a next hop without TLS or without REQUIRETLS refuses it (5.7.30) and, from the
    // null sender, it is dropped, never sent in cleartext.
    b.requiretls = env.requiretls;
    b.received_at = now;
    b.client_address = "127.0.0.1";
    b.client_helo = hostname;
    const bool headers_only = env.ret == store::DsnRet::hdrs || original_is_protected(env);

    const std::string boundary = b.id + "/" + hostname;
    const std::string date = common::rfc5322_date(now);
    const char* subject = any_failed    ? "Undelivered Mail Returned to Sender"
                          : any_delayed ? "Delayed Mail (still being retried)"
                                        : "Successful Mail Delivery Report";
    std::string t;
    t += "From: Mail Delivery System <MAILER-DAEMON@" + hostname + ">\r\n";
    t += "To: <" + env.sender + ">\r\n";
    t += std::string("Subject: ") + subject + "\r\n";
    t += "Date: " + date + "\r\n";
    t += "Message-ID: <" + b.id + "@" + hostname + ">\r\n";
    t += "Auto-Submitted: auto-replied\r\n";
    t += "MIME-Version: 1.0\r\n";
    t += "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"" + boundary + "\"\r\n";
    t += "\r\nThis is a MIME-encapsulated message.\r\n\r\n";

    t += "--" + boundary + "\r\n";
    t += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n";
    t += "This is the mail system at " + hostname + ".\r\n";
    auto group = [&](DsnAction action, const std::string& intro) {
        std::string lines;
        for (const auto* f : due) {
            if (f->action == action)
                lines += "<" + env.recipients[f->index].address + ">: " + one_line(f->reason) + "\r\n";
        }
        if (!lines.empty()) t += "\r\n" + intro + "\r\n\r\n" + lines;
    };
    group(DsnAction::failed,
          "Your message could not be delivered to the recipient(s) below. This is a permanent error; it "
          "will not be retried.");
    group(DsnAction::delayed,
          "Your message has not been delivered to the recipient(s) below yet. It stays in the queue and "
          "is retried" +
              (opt.retry_until ? " until " + common::rfc5322_date(*opt.retry_until) : std::string()) +
              "; you will hear again only if it fails for good. You do not need to send it again.");
    group(DsnAction::relayed,
          "Your message was handed to the mail server of the recipient(s) below, which does not send "
          "delivery notifications itself; this is the last report you get for them.");
    t += "\r\nThe original message ";
    t += headers_only ? "headers are attached.\r\n" : "is attached.\r\n";
    t += "\r\n--" + boundary + "\r\n";

    t += "Content-Type: message/delivery-status\r\n\r\n";
    t += "Reporting-MTA: dns; " + hostname + "\r\n";
    t += "X-Mailward-Queue-ID: " + env.id + "\r\n";
    if (!env.envid.empty()) t += "Original-Envelope-Id: " + one_line(env.envid) + "\r\n";
    t += "Arrival-Date: " + common::rfc5322_date(env.received_at) + "\r\n";
    for (const auto* f : due) {
        const auto& r = env.recipients[f->index];
        t += "\r\n";
        t += "Final-Recipient: rfc822; " + r.address + "\r\n";
        if (!r.orcpt.empty()) {
            auto semi = r.orcpt.find(';');
            t += "Original-Recipient: " +
                 (semi == std::string::npos ? "rfc822; " + r.orcpt
                                            : r.orcpt.substr(0, semi) + "; " + r.orcpt.substr(semi + 1)) +
                 "\r\n";
        }
        t += "Action: " + std::string(to_string(f->action)) + "\r\n";
        t += "Status: " + f->status + "\r\n";
        if (!f->remote_mta.empty()) t += "Remote-MTA: dns; " + f->remote_mta + "\r\n";
        if (!f->diagnostic.empty()) t += "Diagnostic-Code: " + one_line(f->diagnostic) + "\r\n";
        t += "Last-Attempt-Date: " + date + "\r\n";
        if (f->action == DsnAction::delayed && opt.retry_until)
            t += "Will-Retry-Until: " + common::rfc5322_date(*opt.retry_until) + "\r\n";
    }
    t += "\r\n--" + boundary + "\r\n";
    // The copy of the original has CRLF line ends only and no NUL (it goes out through the SMTP
    // client like every composed message); the server refuses any other, so this rarely copies.
    std::string cleaned;
    const std::string* original = &original_body;
    if (const auto scan = smtp::scan_body(original_body); scan.nul || !scan.crlf_only) {
        cleaned = original_body;
        std::erase(cleaned, '\0');
        smtp::normalise_line_ends(cleaned);
        original = &cleaned;
    }
    if (headers_only) {
        t += "Content-Type: text/rfc822-headers\r\n\r\n" + headers_of(*original);
    } else {
        t += "Content-Type: message/rfc822\r\n\r\n" + *original;
        if (!original->ends_with("\r\n")) t += "\r\n";
    }
    t += "\r\n--" + boundary + "--\r\n";
    smtp::normalise_line_ends(t);  // no NUL is left; the header values were kept on one line
    m.body = std::move(t);
    b.size = m.body.size();
    return m;
}

}  // namespace mailward::delivery
