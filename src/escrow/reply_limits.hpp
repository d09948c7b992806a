// Limits on the portal's secure replies, so a recipient cannot mail-bomb the sender or fill the
// disk: at most so many replies per escrowed message and per portal session in a sliding window,
// and a total size of all replies to one message. The history is the message's own audit chain
// (reply_sent rows carry the reply's size and the session's tag), so the limits hold across
// restarts and nodes. Plain logic over values; the service feeds it the rows.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/escrow_store.hpp"

namespace mailward::escrow {

struct ReplyLimits {
    std::size_t per_message = 5;  // replies to one message per window
    std::size_t per_session = 3;  // replies from one session per window
    std::chrono::seconds window{3600};
    std::size_t total_bytes = 50u << 20;  // every reply to one message together, ever
};

// One earlier reply, read back from its reply_sent audit row.
struct PastReply {
    store::EscrowTime at{};
    std::string session;    // the session's tag; "" for rows written before tags existed
    std::size_t bytes = 0;  // text + attachments; 0 for rows written before sizes were recorded
};

enum class ReplyVerdict {
    allowed,
    too_many,         // a window limit: retry_after says when one slot frees up
    total_exhausted,  // the message's total reply size would be exceeded; waiting does not help
};

struct ReplyDecision {
    ReplyVerdict verdict = ReplyVerdict::allowed;
    std::chrono::seconds retry_after{0};  // too_many only; at least 1 s
};

// May a reply of bytes (0: not known yet, e.g. before the body is read, when only the counts and
// an already exhausted total are checked) be sent from session now, given past (any order)?
ReplyDecision check_reply(const std::vector<PastReply>& past, std::string_view session, std::size_t bytes,
                          store::EscrowTime now, const ReplyLimits& limits);

// A session's tag in the audit: the start of its keyed id hash (not the cookie, not reversible).
std::string session_tag(std::string_view session_id_hash);
// The reply_sent row's detail: "queue Q, N attachment(s), B bytes, session S".
std::string reply_detail(std::string_view queue_id, std::size_t files, std::size_t bytes, std::string_view session);
// The reply of a reply_sent row (nullopt for any other event); unknown parts of the detail are 0/"".
std::optional<PastReply> past_reply_of(const store::EscrowAuditEntry& e);

}  // namespace mailward::escrow
