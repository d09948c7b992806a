// Delivery status notifications (bounces) per RFC 3464 in a multipart/report (RFC 6522): a part a
// person can read, the machine-readable message/delivery-status, and the original message (whole,
// or headers only for RET=HDRS, RFC 3461 4.3). Sent from the null sender, never to the null sender
// (RFC 5321 4.5.5), and only for recipients whose NOTIFY asks for failures (RFC 3461 4.1). The
// bounce of a REQUIRETLS message carries REQUIRETLS itself (RFC 8689 4.4): the original stays attached
// but never travels without the promise. The result has CRLF line ends only and no NUL.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "store/store.hpp"

namespace mailward::delivery {

struct FailedRecipient {
    std::size_t index = 0;   // into Envelope::recipients
    std::string status;      // "5.1.1"
    std::string diagnostic;  // "smtp; 550 5.1.1 ..." or ""
    std::string remote_mta;  // MX host name or ""
    std::string reason;      // for a person
};

// Whether a failure of this recipient should produce a DSN to the sender.
bool wants_failure_dsn(const store::Envelope& env, const store::Recipient& r);

// The bounce as a message ready to queue (new queue id, null sender, to env.sender), or nullopt
// when no DSN is due (null sender, or no recipient asked for one).
std::optional<store::StoredMessage> make_bounce(const store::Envelope& env, const std::string& original_body,
                                                const std::vector<FailedRecipient>& failed, const std::string& hostname,
                                                std::chrono::system_clock::time_point now);

}  // namespace mailward::delivery
