// Storage of escrow (docs/design.md: escrow): sealed messages, the one-time codes and sessions of
// the recipients' portal, and the append-only, hash-chained audit log of each escrowed message.
// The store keeps what src/escrow hands it: sealed bytes, keyed hashes of tokens, codes and
// session ids (never the secrets themselves), and audit rows whose chain hash escrow computes
// (the key stays in escrow's key holder). Operations that must be atomic (seal + notice + queue
// state; a code check and its counters; an audit append after the previous row) are one call.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace mailward::store {

struct Envelope;
struct StoredMessage;
using EscrowClock = std::chrono::system_clock;
using EscrowTime = EscrowClock::time_point;

enum class EscrowState { active, revoked, expired, purged };
std::string_view to_string(EscrowState s);
std::optional<EscrowState> parse_escrow_state(std::string_view s);

// One escrowed copy of a message for one recipient.
struct EscrowRecord {
    std::string id;        // escrow id (random, 16 hex digits): the CLI's handle
    std::string queue_id;  // the queued message it was sealed from
    std::size_t rcpt_index = 0;
    std::string sender;       // envelope sender (the reply goes there)
    std::string sender_name;  // the From header's display form, for the notice and the portal
    std::string sender_mode;  // the sender's mode: the reply travels under it
    std::string recipient;    // the address the notice went to (and codes go to)
    std::string message_id;   // Message-ID of the sealed message without <>, "" if none
    std::string token_hash;   // keyed hash (hex) of the link token; unique
    std::string wrapped_key;  // the data key wrapped by the master key; "" once shredded
    std::string sealed;       // escrow::serialize() of the sealed message without its wrapped key;
                              // "" once purged
    EscrowState state = EscrowState::active;
    EscrowTime created{};
    EscrowTime expires{};
    std::optional<EscrowTime> ended_at;      // revoked, expired or purged
    int failed_logins = 0;                   // wrong codes in a row (since the last login or lockout)
    std::optional<EscrowTime> locked_until;  // too many wrong codes: short codes refused until then
    int total_failures = 0;                  // wrong codes over the message's life
    int lockouts = 0;                        // lockouts since the last login (each twice as long)
    bool receipts = false;                   // the sender's account wants read and expiry receipts
    bool read_receipt_sent = false;          // the read receipt was queued (at most once)
};

// One row of a message's audit chain. hash = escrow's keyed hash over (prev, the fields).
struct EscrowAuditEntry {
    std::int64_t seq = 0;  // set by the store
    std::string escrow_id;
    EscrowTime at{};
    std::string event;       // see escrow_event
    std::string address;     // client IP for portal events, "" otherwise
    std::string user_agent;  // for portal events, "" otherwise
    std::string detail;      // one line
    std::string prev_hash;   // hex, "" for the first row of a message
    std::string hash;        // hex
};

namespace escrow_event {
inline constexpr std::string_view sealed = "sealed";
inline constexpr std::string_view notice_sent = "notice_sent";  // queued for delivery
inline constexpr std::string_view link_opened = "link_opened";
inline constexpr std::string_view code_sent = "code_sent";
inline constexpr std::string_view code_refused = "code_refused";  // send limit reached
inline constexpr std::string_view code_failed = "code_failed";
inline constexpr std::string_view code_accepted = "code_accepted";
inline constexpr std::string_view locked = "locked";
inline constexpr std::string_view viewed = "viewed";
inline constexpr std::string_view attachment_downloaded = "attachment_downloaded";
inline constexpr std::string_view reply_sent = "reply_sent";
inline constexpr std::string_view logout = "logout";
inline constexpr std::string_view revoked = "revoked";
inline constexpr std::string_view expired = "expired";
inline constexpr std::string_view purged = "purged";
}  // namespace escrow_event

// Computes an audit row's hash from the previous row's hash ("" for the first) and the row.
using AuditChain = std::function<std::string(const std::string& prev_hash, const EscrowAuditEntry& e)>;

// A portal session (the cookie's id is stored as a keyed hash).
struct EscrowSession {
    std::string id_hash;
    std::string escrow_id;
    std::string csrf;  // the session's CSRF token (random, compared in constant time)
    EscrowTime created{};
    EscrowTime last_seen{};
    std::optional<EscrowTime> ended_at;
};

// What a one-time code check found.
enum class CodeCheck {
    accepted,   // the newest live code matched; it is used up, failed_logins and lockouts reset
    wrong,      // no match; the code's tries and the message's failure counts went up
    no_code,    // no live code (none sent, expired, used, or voided by a lockout or the cap)
    exhausted,  // the live code has had its tries; a new code is needed
    locked,     // short codes are locked (too many wrong codes in a row) until locked_until
    capped,     // the message's wrong codes reached the cap: short codes are void for good
};
std::string_view to_string(CodeCheck c);

// The rules of code sign-in. Short codes (6 digits) can be guessed, so wrong ones are counted:
// lock_after_failures in a row lock short-code sign-in for lock_for, and each further lockout
// (until a successful sign-in) lasts twice as long as the one before, at most max_lock; a lockout
// voids the live short code. Once the message's wrong codes reach max_failures, short codes are
// void for good. A strong code (80 random bits, sent instead of a short one while locked or after
// the cap) cannot be guessed and is accepted regardless; its wrong tries count but never lock.
struct CodeRules {
    int max_tries_per_code = 5;
    int lock_after_failures = 10;
    std::chrono::seconds lock_for{3600};
    std::chrono::seconds max_lock{24 * 3600};
    int max_failures = 30;
    // How long the n-th lockout (n >= 1) lasts.
    std::chrono::seconds lockout(int n) const {
        auto d = lock_for;
        for (int i = 1; i < n && d < max_lock; ++i) d *= 2;
        return d < max_lock ? d : max_lock;
    }
};

class EscrowStore {
  public:
    virtual ~EscrowStore() = default;

    // ---- sealing ----
    // Recipients awaiting escrow: their messages' envelopes (every recipient; the caller picks the
    // awaiting_escrow ones), oldest first, at most limit messages.
    virtual Result<std::vector<Envelope>> awaiting_seal(std::size_t limit) = 0;
    // Atomically: stores rec, appends first (the "sealed" audit row, chained by chain), queues
    // notice (a message to rec.recipient) with a "notice_sent" audit row, and marks recipient
    // rcpt_index of rec.queue_id escrowed.
    // The recipient must still be awaiting escrow (else conflict: an admin deleted it meanwhile, or
    // another node sealed it). Done in the group-commit writer's batch; done() runs once durable.
    using Done = std::function<void(Result<void>)>;
    virtual void create(EscrowRecord rec, EscrowAuditEntry first, StoredMessage notice, AuditChain chain,
                        Done done) = 0;

    virtual Result<EscrowRecord> get(const std::string& id) = 0;                    // not_found
    virtual Result<EscrowRecord> find_by_token(const std::string& token_hash) = 0;  // not_found
    // Ordered by creation, newest first; ended ones only when include_ended.
    virtual Result<std::vector<EscrowRecord>> list(bool include_ended) = 0;

    // ---- lifecycle ----
    // Crypto-shredding: destroys the wrapped key (its row deleted; the freed space is zeroed and
    // the WAL truncated after the commit), state becomes to (revoked or expired), ended_at = now,
    // and the audit row is appended in the same transaction.
    // not_found; already_exists when the message is not active.
    virtual Result<void> shred(const std::string& id, EscrowState to, EscrowTime now, EscrowAuditEntry audit,
                               const AuditChain& chain) = 0;
    // Removes the ciphertext of an ended message (state purged) and appends the audit row.
    // conflict when the message is still active.
    virtual Result<void> purge(const std::string& id, EscrowTime now, EscrowAuditEntry audit,
                               const AuditChain& chain) = 0;
    // Active messages whose expires <= now; ended (revoked/expired) ones ended before before.
    virtual Result<std::vector<std::string>> expired_ids(EscrowTime now) = 0;
    virtual Result<std::vector<std::string>> purgeable_ids(EscrowTime ended_before) = 0;

    // ---- receipts ----
    // Active messages whose sender wants receipts, that the recipient has viewed (a "viewed" audit
    // row) and whose read receipt was not sent yet, oldest first.
    virtual Result<std::vector<std::string>> read_receipts_due() = 0;
    // Marks id's read receipt sent; true when this call did it (false: it already was, by another
    // node or an earlier sweep). not_found if unknown.
    virtual Result<bool> mark_read_receipt(const std::string& id) = 0;

    // ---- one-time codes ----
    // The number of codes sent for id at or after since (the send limit).
    virtual Result<int> codes_sent_since(const std::string& id, EscrowTime since) = 0;
    // Stores a new code (older live codes of id are retired), queues msg (the code's email) and
    // appends audit, atomically. strong: an unguessable code (see CodeRules).
    virtual Result<void> add_code(const std::string& id, const std::string& code_hash, bool strong, EscrowTime now,
                                  EscrowTime expires, StoredMessage msg, EscrowAuditEntry audit,
                                  const AuditChain& chain) = 0;
    // Checks code_hash against the newest live code of id (constant-time compare), updates tries,
    // failed_logins and the lock, and appends the matching audit row (code_accepted, code_failed or
    // locked; detail filled by the store), atomically.
    virtual Result<CodeCheck> check_code(const std::string& id, const std::string& code_hash, EscrowTime now,
                                         const CodeRules& rules, EscrowAuditEntry audit, const AuditChain& chain) = 0;

    // ---- sessions ----
    virtual Result<void> create_session(const EscrowSession& s) = 0;
    virtual Result<EscrowSession> session(const std::string& id_hash) = 0;  // not_found
    virtual Result<void> touch_session(const std::string& id_hash, EscrowTime now) = 0;
    virtual Result<void> end_session(const std::string& id_hash, EscrowTime now) = 0;
    // Ends every session of id (revocation, expiry).
    virtual Result<void> end_sessions_of(const std::string& id, EscrowTime now) = 0;

    // ---- audit ----
    virtual Result<void> append_audit(EscrowAuditEntry e, const AuditChain& chain) = 0;
    virtual Result<std::vector<EscrowAuditEntry>> audit(const std::string& id) = 0;  // oldest first

    // Called after each commit that appended audit rows, with those rows (seq and hash set), so
    // that the chain's head can be kept outside the database (escrow/anchor.hpp). Called on the
    // thread that committed; must not call back into the store. Set it before use.
    using AuditSink = std::function<void(const std::vector<EscrowAuditEntry>&)>;
    virtual void set_audit_sink(AuditSink sink) = 0;
};

}  // namespace mailward::store
