// The storage interfaces every other library uses: the durable queue (envelopes, bodies and
// per-recipient state), the user accounts, the learned TLS policy (policy_store.hpp) and escrow
// (escrow_store.hpp).
// Implementations: sqlite/ (embedded, default) and postgres/ (shared by several nodes).
// Callers depend only on this header.
// Durability contract: submit() calls its completion only after the message is on stable storage.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "store/escrow_store.hpp"
#include "store/policy_store.hpp"

namespace mailward::config {
struct Config;
}

namespace mailward::store {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

// RFC 3461 NOTIFY bits; 0 means "not given" (the default: FAILURE).
enum NotifyBits : unsigned { notify_never = 1, notify_success = 2, notify_failure = 4, notify_delay = 8 };

enum class BodyType { seven_bit, eight_bit_mime, binary_mime };  // RFC 6152 / 3030 BODY=
enum class DsnRet { unspecified, full, hdrs };                   // RFC 3461 RET=

enum class RcptState {
    queued,           // waiting for (another) delivery attempt
    delivered,        // accepted by the next hop
    failed,           // permanent failure, bounce generated (or null sender)
    awaiting_escrow,  // policy says escrow; held until escrow seals it
    escrowed,         // sealed in escrow, notice sent
    deleted,          // removed by an administrator
};
std::string_view to_string(RcptState s);

struct Recipient {
    std::string address;  // forward-path as given (without brackets), UTF-8 allowed
    std::string orcpt;    // RFC 3461 ORCPT, "" when absent ("rfc822;a@b")
    unsigned notify = 0;  // NotifyBits
    RcptState state = RcptState::queued;
    int attempts = 0;
    TimePoint next_attempt{};
    std::string last_error;     // last reply or local reason, human readable
    bool delay_warned = false;  // a delay notification (RFC 3464 Action: delayed) was queued
};

struct Envelope {
    std::string id;      // queue id (common::new_queue_id)
    std::string sender;  // reverse-path without brackets; "" is the null sender
    std::vector<Recipient> recipients;
    BodyType body_type = BodyType::seven_bit;
    bool smtputf8 = false;
    bool requiretls = false;  // RFC 8689 MAIL parameter
    DsnRet ret = DsnRet::unspecified;
    std::string envid;           // RFC 3461 ENVID (xtext-decoded)
    std::string auth_user;       // authenticated submitter, "" if relayed by trusted network
    std::string client_address;  // IP of the submitting client
    std::string client_helo;
    std::string sender_mode;  // the submitter's mode at submission (config::to_string)
    TimePoint received_at{};
    std::uint64_t size = 0;  // body octets as stored
    // Put on hold by an administrator (QueueStore::hold): never leased for delivery until
    // released. Read from the store; a submitted message is never held.
    bool held = false;
};

struct StoredMessage {
    Envelope envelope;
    std::string body;  // header + body as received (with our Received: prepended), CRLF lines
};

// Summaries for `queue list`.
struct QueueEntry {
    std::string id;
    std::string sender;
    TimePoint received_at{};
    std::uint64_t size = 0;
    std::size_t recipients = 0;
    std::size_t pending = 0;   // recipients still queued or awaiting escrow
    TimePoint next_attempt{};  // earliest over pending recipients
};

// One message as `queue list` shows it to an administrator (mailq's view).
struct QueueListing {
    Envelope envelope;    // recipients: only the pending ones (queued, awaiting_escrow), in order
    bool leased = false;  // a delivery engine holds a live lease on it (an attempt is under way)
};

class QueueStore {
  public:
    virtual ~QueueStore() = default;

    using SubmitDone = std::function<void(Result<void>)>;
    // Makes msg durable. done runs on a store thread once the message is on stable storage (or
    // failed); the store batches concurrent submissions into one commit (group commit). done is
    // called exactly once and must not throw; after Store::close() it runs at once, on the calling
    // thread, with common::Errc::shutting_down. Errors: invalid_argument (no id or no recipients),
    // already_exists (id taken), storage errors (nothing of the message was stored).
    // Envelope::size is set from the body; a default received_at becomes the time of storing.
    virtual void submit(StoredMessage msg, SubmitDone done) = 0;

    // Messages with pending recipients (queued or awaiting_escrow), oldest received first.
    virtual Result<std::vector<QueueEntry>> list() = 0;
    virtual Result<Envelope> envelope(const std::string& id) = 0;  // not_found if unknown
    virtual Result<std::string> body(const std::string& id) = 0;   // not_found if unknown or removed
    // Marks every pending recipient deleted and removes the body; the envelope stays (history).
    virtual Result<void> remove(const std::string& id) = 0;
    // Makes every queued recipient of id due now (awaiting_escrow ones wait for escrow).
    virtual Result<void> retry_now(const std::string& id) = 0;
    // The number of messages list() returns.
    virtual Result<std::size_t> count() = 0;
    // Pending recipients (queued, awaiting_escrow) per state, for the metrics gauge; states with
    // none are left out.
    virtual Result<std::vector<std::pair<std::string, std::size_t>>> pending_by_state() {
        return common::Errc::unsupported;
    }

    // ---- administration (`mailward queue ...`) ----
    // The messages list() returns, each with its pending recipients, its hold flag and whether
    // a live lease (lease_until > now) is on it; oldest received first.
    virtual Result<std::vector<QueueListing>> listing(TimePoint now) = 0;
    // Puts id on hold: lease_due() skips it (an attempt already under way finishes). not_found if
    // unknown; invalid_argument when it has nothing pending (nothing to hold). Holding twice is ok.
    virtual Result<void> hold(const std::string& id) = 0;
    // Takes id off hold and makes its queued recipients due now. not_found if unknown;
    // invalid_argument when it is not on hold.
    virtual Result<void> release(const std::string& id) = 0;
    // Makes every queued recipient of every message not on hold due at now (Postfix's
    // `postqueue -f`); returns the number of messages that were waiting and are now due.
    virtual Result<std::size_t> flush(TimePoint now) = 0;

    // ---- delivery (the scheduler's side) ----
    // Leases up to limit messages not on hold that have a queued recipient due at or before now and no live
    // lease (lease_until < now or none), for lease_for, recording owner. Returns their envelopes
    // with every recipient (the caller works on the queued, due ones). A node that dies leaves its
    // leases to expire: the messages are delivered again (at least once), never lost.
    virtual Result<std::vector<Envelope>> lease_due(TimePoint now, std::size_t limit, const std::string& owner,
                                                    std::chrono::milliseconds lease_for) = 0;

    struct RecipientUpdate {
        std::size_t index = 0;  // into Envelope::recipients
        RcptState state = RcptState::queued;
        int attempts = 0;
        TimePoint next_attempt{};
        std::string last_error;
        bool delay_warned = false;  // Recipient::delay_warned after this attempt
    };
    // Applies the outcome of an attempt and releases owner's lease. Only recipients still queued
    // are changed (an administrator's delete wins). A lease taken over by another owner: SQLite
    // (one node) applies the updates to queued recipients all the same (at least once); PostgreSQL
    // applies them only while the message still carries the very lease this store object took
    // (owner and generation), else it changes nothing and returns postgres::PgErrc::lease_lost.
    virtual Result<void> complete_attempt(const std::string& id, const std::string& owner,
                                          const std::vector<RecipientUpdate>& updates) = 0;
    // The same, without blocking the caller: done(result) runs once the outcome is durable (or
    // failed), possibly on another thread. A backend with group commit records many attempts with
    // one flush. The default runs complete_attempt() in place.
    virtual void complete_attempt_async(std::string id, std::string owner, std::vector<RecipientUpdate> updates,
                                        SubmitDone done) {
        auto r = complete_attempt(id, owner, updates);
        if (done) done(r);
    }

    // The earliest next_attempt among queued recipients of messages not on hold, if any (the
    // scheduler sleeps until then).
    virtual Result<std::optional<TimePoint>> next_due() = 0;

    // Releases every lease held by owner (at startup: this node's leases from before a crash).
    virtual Result<std::size_t> release_leases(const std::string& owner) = 0;
    // Extends to until the leases owner still holds on ids (the attempts in flight; the engine
    // calls it every third of the lease time, so a live node's transfers keep their messages and a
    // dead node's expire). A lease taken over by another node is left alone (on PostgreSQL: unless
    // it is still the very lease, by generation, that this store object took). Returns how many
    // were extended.
    virtual Result<std::size_t> renew_leases(const std::string& owner, const std::vector<std::string>& ids,
                                             TimePoint until) = 0;
};

struct User {
    std::string name;           // login name (usually an address)
    std::string password_hash;  // libsodium crypto_pwhash_str (Argon2id)
    std::string mode;           // sender mode; "" = [policy] default_mode
    TimePoint created{};
    // Sender binding: envelope and From: addresses ("a@b") and domains ("@b") this account may
    // use, lower case; empty = none listed (then [submission] sender_login_match decides).
    std::vector<std::string> senders{};
    bool allow_tls_optional = false;  // may send with "TLS-Required: No" (RFC 8689)
    bool receipts = false;            // wants read and expiry receipts for its escrowed messages
};

class UserStore {
  public:
    virtual ~UserStore() = default;
    virtual Result<void> add(const User& u) = 0;     // already_exists if taken; created{} = now
    virtual Result<void> update(const User& u) = 0;  // all but name, created; not_found if absent
    virtual Result<void> remove(const std::string& name) = 0;
    virtual Result<User> get(const std::string& name) = 0;  // not_found if absent
    virtual Result<std::vector<User>> list() = 0;
};

class Store {
  public:
    virtual ~Store() = default;
    virtual QueueStore& queue() = 0;
    virtual UserStore& users() = 0;
    virtual PolicyStore& policy() = 0;  // learned TLS policy, overrides, incidents
    virtual EscrowStore& escrow() = 0;  // sealed messages, portal codes and sessions, audit
    // Stops background threads after committing what was submitted; later submits fail.
    virtual void close() = 0;
    // hint is called, on a thread of the store's, when another process or node may have queued
    // work (PostgreSQL: a NOTIFY from any node's writer after it committed new messages). A hint
    // only, to wake an idle engine at once: it may come late, twice or never, so the engine's
    // polling stays the guarantee. SQLite: never called (one machine: serve's wake pipes do this).
    virtual void set_work_hint(std::function<void()> hint) {}
};

// The process a store is opened for (docs/design.md, "Process model"). main (serve's parent:
// delivery, the escrow sealer and sweeper; and the CLI) creates and migrates the schema and may
// write every table. The other roles open an existing, migrated store, and their connections
// refuse (SQLITE_AUTH, through an authorizer) every write to a table not in writable_tables(role),
// and any schema change: an exploited parser in those processes cannot touch the learned policy.
enum class Role { main, submission, portal };
std::string_view to_string(Role r);  // "main", "submission", "portal"
// The tables a role may insert into, update or delete from; empty for main (meaning: all).
const std::vector<std::string_view>& writable_tables(Role r);

// Opens the backend named by [store] backend for role. main creates and migrates the schema as
// needed; the other roles need it migrated already (else Errc::unsupported, one log line).
Result<std::unique_ptr<Store>> open(const config::Config& cfg, Role role = Role::main);

}  // namespace mailward::store
