// Delivery status notifications per RFC 3464 in a multipart/report (RFC 6522): a part a person can
// read, the machine-readable message/delivery-status, and the original message (whole, or headers
// only for RET=HDRS, RFC 3461 4.3, and always headers only when the original was protected: its
// sender's mode forces TLS or it carried REQUIRETLS, so its body never leaves in a notification).
// Actions: failed (a bounce), delayed (still being retried, RFC 3464 2.3.3) and relayed (handed to
// a next hop that does not offer DSN, RFC 3461 5.2.2). Sent from the null sender, never to the
// null sender (RFC 5321 4.5.5), and only for the recipients whose NOTIFY asks for that action
// (RFC 3461 4.1). A notification of a REQUIRETLS message carries REQUIRETLS itself (RFC 8689 4.4).
// The result has CRLF line ends only and no NUL.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "store/store.hpp"

namespace mailward::delivery {

enum class DsnAction { failed, delayed, relayed };
std::string_view to_string(DsnAction a);

struct DsnRecipient {
    std::size_t index = 0;   // into Envelope::recipients
    std::string status;      // "5.1.1", "4.2.0", "2.0.0"
    std::string diagnostic;  // "smtp; 550 5.1.1 ..." or ""
    std::string remote_mta;  // MX host name or ""
    std::string reason;      // for a person
    DsnAction action = DsnAction::failed;
};

// Whether this recipient's NOTIFY asks for a notification of action. No NOTIFY given means
// FAILURE,DELAY (RFC 3461 4.1 leaves DELAY to the MTA; sendmail's choice, and the sender's
// interest); SUCCESS only when asked for; never to the null sender.
bool wants_dsn(const store::Envelope& env, const store::Recipient& r, DsnAction action);
inline bool wants_failure_dsn(const store::Envelope& env, const store::Recipient& r) {
    return wants_dsn(env, r, DsnAction::failed);
}

// Whether the original's body must stay out of any notification (mode forces TLS, or REQUIRETLS).
bool original_is_protected(const store::Envelope& env);

struct DsnOptions {
    std::string hostname;                                              // Reporting-MTA, From, Message-ID
    std::chrono::system_clock::time_point now;                         // Date, Last-Attempt-Date, the new queue id
    std::optional<std::chrono::system_clock::time_point> retry_until;  // delayed: Will-Retry-Until
};

// The notification as a message ready to queue (new queue id, null sender, to env.sender), or
// nullopt when none is due (null sender, or no listed recipient asked for its action).
std::optional<store::StoredMessage> make_dsn(const store::Envelope& env, const std::string& original_body,
                                             const std::vector<DsnRecipient>& entries, const DsnOptions& opt);

}  // namespace mailward::delivery
