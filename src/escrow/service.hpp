// Escrow's operations, used by `serve` (the sealer and the lifecycle sweep), the portal and the
// CLI: seal each recipient awaiting escrow and queue its notice; expire (crypto-shred) and purge;
// the portal's link, one-time code, session, read and reply steps; revoke; verify the audit chain.
// Every call blocks (SQLite, libsodium, GMime): callers on an I/O thread use a thread pool.
// Secrets (link tokens, codes, session ids) are random, handed out once and stored only as keyed
// hashes; every recipient-facing step is in the message's audit chain.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "escrow/audit.hpp"
#include "escrow/brand.hpp"
#include "escrow/keys.hpp"
#include "escrow/reply_limits.hpp"
#include "message/compose.hpp"
#include "store/store.hpp"

namespace mailward::escrow {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

struct ServiceSettings {
    std::string portal_url = "https://localhost:8443";        // [escrow] url (no trailing slash needed)
    std::string hostname = "localhost";                       // [server] hostname
    std::chrono::seconds expiry{30 * 24 * 3600};              // [escrow] expiry
    std::vector<std::string> notify_sender{"tls-or-escrow"};  // [escrow] notify_sender: sender modes
    std::chrono::minutes code_ttl{15};
    int max_code_sends = 3;  // per send_window
    std::chrono::minutes send_window{10};
    std::chrono::minutes session_idle{15};
    std::chrono::hours session_max{8};
    std::chrono::hours purge_after{24 * 7};   // after expiry or revocation, the ciphertext goes
    std::size_t max_reply_bytes = 10u << 20;  // text + attachments of a reply ([portal] max_reply_size)
    ReplyLimits reply_limits;                 // [portal] replies_per_message, ...
    store::CodeRules code_rules;
    Brand brand;  // [branding]: the notice and the code mail (the logo by its URL on the portal)
};

// Who is at the other end of a portal request (for the audit).
struct Client {
    std::string address;
    std::string user_agent;
};

struct LinkInfo {
    std::string escrow_id;
    std::string sender_name;
    TimePoint expires{};
    store::EscrowState state = store::EscrowState::active;
    bool locked = false;  // short codes are locked or capped: a new code will be a long one
};

enum class CodeRequest { sent, limited, unavailable };

struct LoginOutcome {
    store::CodeCheck check = store::CodeCheck::wrong;
    std::string session_cookie;  // set when accepted: the new session's id (a fresh one each login)
    std::string csrf;
};

struct SessionInfo {
    std::string id_hash;
    std::string csrf;
    store::EscrowRecord record;
    std::string cookie;  // the cookie value the session was found by: read() shows it to the key holder
};

struct ReplyInput {
    std::string text;
    std::vector<message::Attachment> attachments;
};

struct ReplyOutcome {
    std::string queue_id;  // the queued reply; "" when a limit refused it
    ReplyDecision limit;   // allowed, or which limit refused it
};

class EscrowService {
  public:
    EscrowService(store::Store& store, const KeyHolder& keys, ServiceSettings settings);

    // ---- serve ----
    // Seals every recipient awaiting escrow (at most limit messages per call) and queues its
    // notice, each atomically with the recipient's change to escrowed. Returns how many recipients
    // were sealed. A recipient that cannot be sealed stays awaiting escrow (logged).
    Result<std::size_t> seal_pending(TimePoint now, std::size_t limit = 50);
    // Crypto-shreds expired messages and purges the ciphertext of those ended purge_after ago.
    Result<std::size_t> sweep(TimePoint now);

    // ---- portal ----
    // The link's page: what it may show. not_found for an unknown token. Records link_opened.
    Result<LinkInfo> open_link(std::string_view token, const Client& client, TimePoint now);
    // Sends a new one-time code to the message's recipient, within the send limit. The portal
    // answers the same whatever this returns.
    Result<CodeRequest> request_code(std::string_view token, const Client& client, TimePoint now);
    // Checks code; when accepted, a new session (the caller sets its cookie).
    Result<LoginOutcome> login(std::string_view token, std::string_view code, const Client& client, TimePoint now);
    // The live session for a cookie value (idle and absolute limits enforced; touches it).
    // not_found when there is none (unknown, ended, timed out, or the message is no longer active).
    Result<SessionInfo> session(std::string_view cookie, TimePoint now);
    Result<void> logout(const SessionInfo& s, const Client& client, TimePoint now);
    // The sealed message's bytes (RFC 5322). The caller records what it showed with record().
    Result<std::string> read(const SessionInfo& s);
    // Appends a portal event (viewed, attachment_downloaded, ...) to the message's audit chain.
    Result<void> record(const SessionInfo& s, std::string_view event, const Client& client, std::string detail,
                        TimePoint now);
    // Whether s may send a reply of bytes now under settings.reply_limits (bytes 0: its size is not
    // known yet; the portal asks before it reads a reply's body).
    Result<ReplyDecision> reply_allowed(const SessionInfo& s, std::size_t bytes, TimePoint now);
    // Queues the recipient's reply to the original sender under the sender's mode, within the reply
    // limits (checked and counted atomically with other replies of this process); the outcome says
    // the queue id or the limit that refused it. too_large past max_reply_bytes; invalid_argument
    // when there is nobody to reply to.
    Result<ReplyOutcome> reply(const SessionInfo& s, const ReplyInput& in, const Client& client, TimePoint now);
    // A token for forms shown before login, bound to the browser's pre-session cookie and the link.
    std::string pre_login_csrf(std::string_view pre_cookie, std::string_view token) const;

    // ---- administration ----
    Result<void> revoke(const std::string& id, const std::string& who, TimePoint now);
    Result<AuditVerdict> verify(const std::string& id);

    // Runs after anything was queued (a notice, a code, a reply), so delivery looks at once.
    void set_on_queued(std::function<void()> f) { on_queued_ = std::move(f); }

    static std::string random_token();  // 256 random bits, base64url without padding

  private:
    Result<void> seal_one(const store::Envelope& env, const std::string& body, std::size_t index, TimePoint now);
    // Queues a read receipt (expired=false) or an expiry receipt to rec's sender.
    void send_receipt(const store::EscrowRecord& rec, bool expired, TimePoint now);
    // Queues the sender's notice of a seal when [escrow] notify_sender lists the sender's mode.
    void notify_sender(const store::Envelope& env, std::size_t index, const std::string& escrow_id,
                       const std::string& message_id, TimePoint now);
    Result<void> append(const std::string& id, std::string_view event, const Client& client, std::string detail,
                        TimePoint now);
    void queued() const {
        if (on_queued_) on_queued_();
    }
    // The logo's https URL on the portal for the mails ("" without a logo).
    std::string logo_url() const;

    store::Store& store_;
    const KeyHolder& keys_;
    ServiceSettings settings_;
    store::AuditChain chain_;
    std::function<void()> on_queued_;
    std::mutex reply_mutex_;  // a reply's limit check, queueing and audit row, one at a time
};

}  // namespace mailward::escrow
