// The submission service's metrics (common/metrics.hpp), one call per event: connections by
// listener, refusals by reason, messages queued.
#pragma once

#include <string_view>

#include "common/metrics.hpp"

namespace mailward::server {

// listener: "submission" (STARTTLS port) or "implicit_tls".
inline void count_connection(std::string_view listener) {
    common::metrics::inc("mailward_submission_connections_total", "Submission connections accepted, by listener.",
                         "listener", listener);
}

// reason: too_many_connections, auth_failed, auth_throttled, auth_required, relay_denied,
// sender_not_owned, from_not_owned, from_unreadable, too_many_hops, malformed_message,
// message_too_big.
inline void count_rejection(std::string_view reason) {
    common::metrics::inc("mailward_submission_rejections_total",
                         "Submission connections, logins, commands and messages refused, by reason.", "reason", reason);
}

inline void count_queued() {
    common::metrics::inc("mailward_submission_messages_total", "Messages accepted and queued by submission.");
}

}  // namespace mailward::server
