// The escrow service (see service.hpp): sealing with notices, lifecycle, the portal's steps and
// administration, over store::EscrowStore and the KeyHolder. Seal context: the escrow id and the
// recipient, so a ciphertext moved to another row does not open.
#include "escrow/service.hpp"

#include <algorithm>

#include <sodium.h>
#include <spdlog/spdlog.h>

#include "common/ids.hpp"
#include "common/log_escape.hpp"
#include "common/metrics.hpp"
#include "common/timefmt.hpp"
#include "common/wait_callback.hpp"
#include "escrow/notice.hpp"
#include "escrow/seal.hpp"
#include "escrow/sender_notice.hpp"
#include "message/view.hpp"

namespace mailward::escrow {

constexpr std::string_view kEscrowEventsHelp =
    "Escrowed messages by event: sealed, read (opened by its recipient), expired (key destroyed).";
namespace {

std::string random_hex(std::size_t bytes) {
    std::string raw(bytes, '\0');
    randombytes_buf(raw.data(), raw.size());
    std::string hex(bytes * 2 + 1, '\0');
    sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
    hex.pop_back();
    return hex;
}

std::string six_digits() {
    auto n = randombytes_uniform(1'000'000);
    std::string s = std::to_string(n);
    return std::string(6 - s.size(), '0') + s;
}

// A strong code: 16 characters of Crockford's base32 alphabet (80 random bits), sent while
// short codes are locked or capped; shown in groups of four, "7KQ2-M9XD-...".
constexpr std::string_view kStrongAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

std::string strong_code() {
    std::string s;
    for (int i = 0; i < 16; ++i) s += kStrongAlphabet[randombytes_uniform(32)];
    return s;
}

std::string grouped(std::string_view code) {
    if (code.size() <= 6) return std::string(code);
    std::string out;
    for (std::size_t i = 0; i < code.size(); ++i) {
        if (i > 0 && i % 4 == 0) out += '-';
        out += code[i];
    }
    return out;
}

// What a typed code is compared as: letters and digits only, upper case (people type spaces,
// dashes and lower case), the look-alikes of Crockford's alphabet mapped to what it uses.
std::string normalized_code(std::string_view typed) {
    std::string out;
    for (char c : typed) {
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        if (c == 'O') c = '0';
        if (c == 'I' || c == 'L') c = '1';
        if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')) out += c;
        if (out.size() > 64) break;
    }
    return out;
}

std::string link_base(std::string url) {
    while (!url.empty() && url.back() == '/') url.pop_back();
    return url;
}

SealContext context_of(const store::EscrowRecord& r) { return SealContext{r.id, r.recipient, 1}; }

store::StoredMessage system_message(std::string sender, std::string recipient, std::string mode, std::string body,
                                    TimePoint now) {
    store::StoredMessage m;
    m.envelope.id = common::new_queue_id(now);
    m.envelope.sender = std::move(sender);
    store::Recipient r;
    r.address = std::move(recipient);
    r.next_attempt = now;
    m.envelope.recipients.push_back(std::move(r));
    m.envelope.body_type = store::BodyType::eight_bit_mime;
    m.envelope.sender_mode = std::move(mode);
    m.envelope.client_address = "127.0.0.1";
    m.envelope.client_helo = "escrow";
    m.envelope.received_at = now;
    m.body = std::move(body);
    return m;
}

bool header_is_utf8(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80) return true;
    return false;
}

// The service's key holder, with unwrap() on behalf of one portal session: seal.cpp's open()
// stays unaware of sessions.
class SessionKeys final : public KeyHolder {
  public:
    SessionKeys(const KeyHolder& keys, UnwrapGrant grant) : keys_(keys), grant_(std::move(grant)) {}
    KeyId key_id() const override { return keys_.key_id(); }
    Result<std::string> wrap(std::string_view secret, std::string_view aad) const override {
        return keys_.wrap(secret, aad);
    }
    Result<SecretBytes> unwrap(std::string_view wrapped, std::string_view aad) const override {
        return keys_.unwrap_for(grant_, wrapped, aad);
    }
    std::string mac_hex(std::string_view purpose, std::string_view data) const override {
        return keys_.mac_hex(purpose, data);
    }

  private:
    const KeyHolder& keys_;
    UnwrapGrant grant_;
};

}  // namespace

std::string EscrowService::logo_url() const {
    return settings_.brand.has_logo ? link_base(settings_.portal_url) + std::string(kLogoPath) : std::string();
}

EscrowService::EscrowService(store::Store& store, const KeyHolder& keys, ServiceSettings settings)
    : store_(store), keys_(keys), settings_(std::move(settings)), chain_(audit_chain(keys)) {}

std::string EscrowService::random_token() {
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    char out[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64(out, sizeof out, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    return out;
}

Result<void> EscrowService::append(const std::string& id, std::string_view event, const Client& client,
                                   std::string detail, TimePoint now) {
    store::EscrowAuditEntry e;
    e.escrow_id = id;
    e.at = now;
    e.event = std::string(event);
    e.address = client.address;
    e.user_agent = client.user_agent.substr(0, 300);
    e.detail = std::move(detail);
    return store_.escrow().append_audit(std::move(e), chain_);
}

// ---- sealing ----

Result<std::size_t> EscrowService::seal_pending(TimePoint now, std::size_t limit) {
    auto envs = store_.escrow().awaiting_seal(limit);
    if (!envs) return envs.error();
    std::size_t sealed = 0;
    for (const auto& env : *envs) {
        auto body = store_.queue().body(env.id);
        if (!body) {
            // With several nodes on one store, another node's sealer may have sealed every recipient
            // (and deleted the body) since awaiting_seal() read the envelope: nothing to do.
            if (body.error() == common::Errc::not_found)
                spdlog::info("escrow: {} is no longer waiting for escrow (sealed elsewhere or deleted)", env.id);
            else spdlog::error("escrow: cannot read the body of {} to seal it: {}", env.id, body.error().message());
            continue;
        }
        for (std::size_t i = 0; i < env.recipients.size(); ++i) {
            if (env.recipients[i].state != store::RcptState::awaiting_escrow) continue;
            if (auto r = seal_one(env, *body, i, now); !r) {
                // already_exists: the recipient left awaiting_escrow meanwhile (another node sealed it,
                // or an administrator deleted it); the store kept exactly one seal and one notice.
                if (r.error() == common::Errc::already_exists)
                    spdlog::info("escrow: {} for {} is no longer waiting for escrow (sealed elsewhere or deleted)",
                                 env.id, common::log_escape(env.recipients[i].address));
                else
                    spdlog::error("escrow: cannot seal {} for {}: {}", env.id,
                                  common::log_escape(env.recipients[i].address), r.error().message());
                continue;
            }
            ++sealed;
        }
    }
    if (sealed > 0) queued();
    return sealed;
}

Result<void> EscrowService::seal_one(const store::Envelope& env, const std::string& body, std::size_t index,
                                     TimePoint now) {
    const std::string& recipient = env.recipients[index].address;
    store::EscrowRecord rec;
    rec.id = random_hex(8);
    rec.queue_id = env.id;
    rec.rcpt_index = index;
    rec.sender = env.sender;
    rec.sender_mode = env.sender_mode;
    rec.recipient = recipient;
    rec.created = now;
    rec.expires = now + settings_.expiry;
    // Receipts when the submitting account asks for them (`mailward user set NAME --receipts`).
    if (!env.auth_user.empty() && !env.sender.empty()) {
        if (auto u = store_.users().get(env.auth_user); u) rec.receipts = u->receipts;
    }

    std::string from = env.sender.empty() ? "postmaster@" + settings_.hostname : env.sender;
    std::string sender_name = from;
    if (auto view = message::parse_message(body); view) {
        if (!view->from.empty()) {
            from = view->from;
            sender_name = view->from;
        }
        rec.message_id = view->message_id;
    }
    rec.sender_name = sender_name;

    const std::string token = random_token();
    rec.token_hash = keys_.mac_hex("token", token);

    auto sealed = seal(body, context_of(rec), keys_);
    if (!sealed) return sealed.error();
    rec.wrapped_key = sealed->wrapped_key;
    shred(*sealed);  // the stored blob carries no key; the key is its own column
    rec.sealed = serialize(*sealed);

    NoticeInput n;
    n.from = from;
    n.sender_name = sender_name;
    n.to = recipient;
    n.link = link_base(settings_.portal_url) + "/m/" + token;
    n.expires = rec.expires;
    n.hostname = settings_.hostname;
    n.brand = settings_.brand;
    n.logo_url = logo_url();
    auto notice_body = compose_notice(n);
    if (!notice_body) return notice_body.error();
    // The notice goes to the recipient like any mail, forced to TLS where the domain is known to
    // do TLS, never itself escrowed (it holds no content). Bounces go to the sender, headers only.
    auto notice = system_message(env.sender, recipient, "opportunistic", std::move(*notice_body), now);
    notice.envelope.ret = store::DsnRet::hdrs;
    notice.envelope.smtputf8 = header_is_utf8(recipient) || header_is_utf8(env.sender);

    store::EscrowAuditEntry first;
    first.at = now;
    first.event = std::string(store::escrow_event::sealed);
    first.detail =
        "from queue " + env.id + " recipient " + std::to_string(index) + ", expires " + common::iso8601(rec.expires);

    const std::string id = rec.id;
    const std::string rec_message_id = rec.message_id;
    auto create = [&](auto done) {
        store_.escrow().create(std::move(rec), std::move(first), std::move(notice), chain_, std::move(done));
    };
    auto r = common::wait_callback<Result<void>>(create);
    if (r) spdlog::info("escrow: {} recipient {} sealed as {}, notice queued", env.id, recipient, id);
    if (r) common::metrics::inc("mailward_escrow_events_total", kEscrowEventsHelp, "event", "sealed");
    if (r) notify_sender(env, index, id, rec_message_id, now);
    return r;
}

void EscrowService::notify_sender(const store::Envelope& env, std::size_t index, const std::string& escrow_id,
                                  const std::string& message_id, TimePoint now) {
    const auto& modes = settings_.notify_sender;
    if (env.sender.empty() || std::find(modes.begin(), modes.end(), env.sender_mode) == modes.end()) return;
    SenderNoticeInput in;
    in.to = env.sender;
    in.recipient = env.recipients[index].address;
    in.message_id = message_id;
    in.reason = env.recipients[index].last_error;
    in.queue_id = env.id;
    in.escrow_id = escrow_id;
    in.expires = now + settings_.expiry;
    in.hostname = settings_.hostname;
    auto body = compose_sender_notice(in);
    if (!body) {
        spdlog::error("escrow: {}: cannot compose the notice to the sender: {}", env.id, body.error().message());
        return;
    }
    // From the null sender (a failure of it never bounces), under the original's mode (it names
    // the recipient). After the seal, not in its transaction: a crash in between loses this
    // courtesy notice, never mail.
    auto m = system_message("", env.sender, env.sender_mode, std::move(*body), now);
    m.envelope.ret = store::DsnRet::hdrs;
    m.envelope.smtputf8 = header_is_utf8(env.sender) || header_is_utf8(in.recipient);
    const std::string qid = m.envelope.id;
    auto submit = [&](auto done) { store_.queue().submit(std::move(m), std::move(done)); };
    if (auto q = common::wait_callback<Result<void>>(submit); !q) {
        spdlog::error("escrow: {}: the notice to the sender could not be queued: {}", env.id, q.error().message());
        return;
    }
    spdlog::info("escrow: {}: notice {} to the sender <{}> queued ({} escrowed as {})", env.id, qid,
                 common::log_escape(env.sender), common::log_escape(in.recipient), escrow_id);
}

// ---- lifecycle ----

void EscrowService::send_receipt(const store::EscrowRecord& rec, bool expired, TimePoint now) {
    ReceiptInput in;
    in.kind = expired ? ReceiptInput::Kind::expired : ReceiptInput::Kind::read;
    in.to = rec.sender;
    in.recipient = rec.recipient;
    in.message_id = rec.message_id;
    in.escrow_id = rec.id;
    in.at = now;
    in.was_read = rec.read_receipt_sent;
    in.hostname = settings_.hostname;
    auto body = compose_receipt(in);
    if (!body) {
        spdlog::error("escrow: {}: cannot compose the receipt: {}", rec.id, body.error().message());
        return;
    }
    auto m = system_message("", rec.sender, rec.sender_mode, std::move(*body), now);
    m.envelope.ret = store::DsnRet::hdrs;
    m.envelope.smtputf8 = header_is_utf8(rec.sender) || header_is_utf8(rec.recipient);
    const std::string qid = m.envelope.id;
    auto submit = [&](auto done) { store_.queue().submit(std::move(m), std::move(done)); };
    if (auto q = common::wait_callback<Result<void>>(submit); !q) {
        spdlog::error("escrow: {}: the {} receipt could not be queued: {}", rec.id, expired ? "expiry" : "read",
                      q.error().message());
        return;
    }
    spdlog::info("escrow: {}: {} receipt {} to <{}> queued", rec.id, expired ? "expiry" : "read", qid,
                 common::log_escape(rec.sender));
}

Result<std::size_t> EscrowService::sweep(TimePoint now) {
    std::size_t changed = 0;
    // Read receipts first: an expiry in the same sweep then knows the message was read.
    if (auto due = store_.escrow().read_receipts_due(); due) {
        for (const auto& id : *due) {
            auto mine = store_.escrow().mark_read_receipt(id);  // once, whichever node gets here first
            if (!mine || !*mine) continue;
            if (auto rec = store_.escrow().get(id); rec) send_receipt(*rec, false, now);
        }
    } else {
        spdlog::error("escrow: cannot look for read receipts due: {}", due.error().message());
    }
    auto expired = store_.escrow().expired_ids(now);
    if (!expired) return expired.error();
    for (const auto& id : *expired) {
        auto before = store_.escrow().get(id);
        store::EscrowAuditEntry e;
        e.at = now;
        e.event = std::string(store::escrow_event::expired);
        e.detail = "key destroyed at expiry";
        if (auto r = store_.escrow().shred(id, store::EscrowState::expired, now, std::move(e), chain_); r) {
            ++changed;
            spdlog::info("escrow: {} expired, key destroyed", id);
            common::metrics::inc("mailward_escrow_events_total", kEscrowEventsHelp, "event", "expired");
            // The expiry receipt goes with the one transition to expired (a crash in between loses
            // the receipt, never mail).
            if (before && before->receipts) send_receipt(*before, true, now);
        } else {
            spdlog::error("escrow: cannot expire {}: {}", id, r.error().message());
        }
    }
    auto purge = store_.escrow().purgeable_ids(now - settings_.purge_after);
    if (!purge) return purge.error();
    for (const auto& id : *purge) {
        store::EscrowAuditEntry e;
        e.event = std::string(store::escrow_event::purged);
        e.detail = "ciphertext removed";
        if (auto r = store_.escrow().purge(id, now, std::move(e), chain_); r) {
            ++changed;
            spdlog::info("escrow: {} purged", id);
        } else {
            spdlog::error("escrow: cannot purge {}: {}", id, r.error().message());
        }
    }
    return changed;
}

Result<void> EscrowService::revoke(const std::string& id, const std::string& who, TimePoint now) {
    store::EscrowAuditEntry e;
    e.at = now;
    e.event = std::string(store::escrow_event::revoked);
    e.detail = "revoked by " + who + "; key destroyed";
    return store_.escrow().shred(id, store::EscrowState::revoked, now, std::move(e), chain_);
}

Result<AuditVerdict> EscrowService::verify(const std::string& id) {
    if (auto rec = store_.escrow().get(id); !rec) return rec.error();
    auto rows = store_.escrow().audit(id);
    if (!rows) return rows.error();
    return verify_audit(*rows, keys_);
}

// ---- portal ----

Result<LinkInfo> EscrowService::open_link(std::string_view token, const Client& client, TimePoint now) {
    auto rec = store_.escrow().find_by_token(keys_.mac_hex("token", token));
    if (!rec) return rec.error();
    LinkInfo info;
    info.escrow_id = rec->id;
    info.sender_name = rec->sender_name;
    info.expires = rec->expires;
    info.state = rec->state;
    info.locked =
        (rec->locked_until && now < *rec->locked_until) || rec->total_failures >= settings_.code_rules.max_failures;
    if (auto r = append(rec->id, store::escrow_event::link_opened, client, "", now); !r) return r.error();
    return info;
}

Result<CodeRequest> EscrowService::request_code(std::string_view token, const Client& client, TimePoint now) {
    auto rec = store_.escrow().find_by_token(keys_.mac_hex("token", token));
    if (!rec) {
        if (rec.error() == common::Errc::not_found) return CodeRequest::unavailable;
        return rec.error();
    }
    if (rec->state != store::EscrowState::active) return CodeRequest::unavailable;
    auto sent = store_.escrow().codes_sent_since(rec->id, now - settings_.send_window);
    if (!sent) return sent.error();
    if (*sent >= settings_.max_code_sends) {
        if (auto r = append(rec->id, store::escrow_event::code_refused, client,
                            "send limit: " + std::to_string(*sent) + " codes in " +
                                std::to_string(settings_.send_window.count()) + " minutes",
                            now);
            !r)
            return r.error();
        return CodeRequest::limited;
    }
    // While short codes are locked or capped, the code is a strong one: the recipient still gets
    // in through their mailbox, and whoever has only the link gains nothing by guessing.
    const bool strong =
        (rec->locked_until && now < *rec->locked_until) || rec->total_failures >= settings_.code_rules.max_failures;
    const std::string code = strong ? strong_code() : six_digits();
    // Always to the message's recipient: nothing in the request chooses the address.
    CodeMailInput in{rec->recipient,     grouped(code),   settings_.code_ttl,
                     settings_.hostname, settings_.brand, logo_url()};
    auto body = compose_code_mail(in);
    if (!body) return body.error();
    // Null sender: an automatic message that must not cause bounces to anybody.
    auto msg = system_message("", rec->recipient, "opportunistic", std::move(*body), now);
    store::EscrowAuditEntry e;
    e.at = now;
    e.event = std::string(store::escrow_event::code_sent);
    e.address = client.address;
    e.user_agent = client.user_agent.substr(0, 300);
    e.detail = std::string(strong ? "long code" : "code") + " mail " + msg.envelope.id + " queued";
    auto r = store_.escrow().add_code(rec->id, keys_.mac_hex("otp", rec->id + ":" + code), strong, now,
                                      now + settings_.code_ttl, std::move(msg), std::move(e), chain_);
    if (!r) return r.error();
    queued();
    return CodeRequest::sent;
}

Result<LoginOutcome> EscrowService::login(std::string_view token, std::string_view code, const Client& client,
                                          TimePoint now) {
    auto rec = store_.escrow().find_by_token(keys_.mac_hex("token", token));
    if (!rec) return rec.error();
    LoginOutcome out;
    if (rec->state != store::EscrowState::active) {
        out.check = store::CodeCheck::no_code;
        return out;
    }
    const std::string digits = normalized_code(code);
    store::EscrowAuditEntry e;
    e.address = client.address;
    e.user_agent = client.user_agent.substr(0, 300);
    auto check = store_.escrow().check_code(rec->id, keys_.mac_hex("otp", rec->id + ":" + digits), now,
                                            settings_.code_rules, std::move(e), chain_);
    if (!check) return check.error();
    out.check = *check;
    if (*check != store::CodeCheck::accepted) return out;
    out.session_cookie = random_token();
    out.csrf = random_token();
    store::EscrowSession s;
    s.id_hash = keys_.mac_hex("session", out.session_cookie);
    s.escrow_id = rec->id;
    s.csrf = out.csrf;
    s.created = now;
    s.last_seen = now;
    if (auto r = store_.escrow().create_session(s); !r) return r.error();
    return out;
}

Result<SessionInfo> EscrowService::session(std::string_view cookie, TimePoint now) {
    if (cookie.empty()) return common::Errc::not_found;
    const std::string id_hash = keys_.mac_hex("session", cookie);
    auto s = store_.escrow().session(id_hash);
    if (!s) return s.error();
    if (s->ended_at || now - s->last_seen > settings_.session_idle || now - s->created > settings_.session_max) {
        if (!s->ended_at) (void)store_.escrow().end_session(id_hash, now);
        return common::Errc::not_found;
    }
    auto rec = store_.escrow().get(s->escrow_id);
    if (!rec) return rec.error();
    if (rec->state != store::EscrowState::active || now >= rec->expires) return common::Errc::not_found;
    if (auto r = store_.escrow().touch_session(id_hash, now); !r) return r.error();
    return SessionInfo{id_hash, s->csrf, std::move(*rec), std::string(cookie)};
}

Result<void> EscrowService::logout(const SessionInfo& s, const Client& client, TimePoint now) {
    if (auto r = store_.escrow().end_session(s.id_hash, now); !r) return r;
    return append(s.record.id, store::escrow_event::logout, client, "", now);
}

Result<std::string> EscrowService::read(const SessionInfo& s) {
    auto sealed = parse(s.record.sealed);
    if (!sealed) return sealed.error();
    sealed->wrapped_key = s.record.wrapped_key;
    // The key holder opens this message's key for this session only (keyholder.hpp).
    const SessionKeys keys(keys_, UnwrapGrant{s.record.id, s.cookie});
    auto text = open(*sealed, context_of(s.record), keys);
    if (text) common::metrics::inc("mailward_escrow_events_total", kEscrowEventsHelp, "event", "read");
    return text;
}

Result<void> EscrowService::record(const SessionInfo& s, std::string_view event, const Client& client,
                                   std::string detail, TimePoint now) {
    return append(s.record.id, event, client, std::move(detail), now);
}

Result<ReplyDecision> EscrowService::reply_allowed(const SessionInfo& s, std::size_t bytes, TimePoint now) {
    auto rows = store_.escrow().audit(s.record.id);
    if (!rows) return rows.error();
    std::vector<PastReply> past;
    for (const auto& e : *rows)
        if (auto r = past_reply_of(e)) past.push_back(std::move(*r));
    return check_reply(past, session_tag(s.id_hash), bytes, now, settings_.reply_limits);
}

Result<ReplyOutcome> EscrowService::reply(const SessionInfo& s, const ReplyInput& in, const Client& client,
                                          TimePoint now) {
    if (s.record.sender.empty()) return common::Errc::invalid_argument;
    std::size_t size = in.text.size();
    for (const auto& a : in.attachments) size += a.data.size();
    if (size > settings_.max_reply_bytes) return common::Errc::too_large;

    // Two replies at once must not both pass the check: the check, the queueing and the audit row
    // that counts the reply are one step in this process.
    std::lock_guard lock(reply_mutex_);
    auto allowed = reply_allowed(s, size, now);
    if (!allowed) return allowed.error();
    if (allowed->verdict != ReplyVerdict::allowed) return ReplyOutcome{{}, *allowed};

    std::string subject, to = s.record.sender_name.empty() ? s.record.sender : s.record.sender_name;
    auto original = read(s);
    if (!original) return original.error();
    if (auto view = message::parse_message(*original); view) subject = view->subject;

    ReplyMailInput r;
    r.from = s.record.recipient;
    r.to = to;
    r.subject = subject;
    r.in_reply_to = s.record.message_id;
    r.text = in.text;
    r.attachments = in.attachments;
    r.hostname = settings_.hostname;
    auto body = compose_reply(r);
    if (!body) return body.error();
    // The reply travels under the original sender's mode: forced TLS (or escrow) as the sender's
    // own mail would.
    auto msg = system_message(s.record.recipient, s.record.sender, s.record.sender_mode, std::move(*body), now);
    msg.envelope.auth_user = "portal:" + s.record.id;
    msg.envelope.client_address = client.address.empty() ? "127.0.0.1" : client.address;
    msg.envelope.smtputf8 = header_is_utf8(s.record.recipient) || header_is_utf8(s.record.sender);
    const std::string queue_id = msg.envelope.id;
    auto submit = [&](auto done) { store_.queue().submit(std::move(msg), std::move(done)); };
    if (auto res = common::wait_callback<Result<void>>(submit); !res) return res.error();
    // This row is what the limits count: its detail carries the reply's size and session tag.
    if (auto a = append(s.record.id, store::escrow_event::reply_sent, client,
                        reply_detail(queue_id, in.attachments.size(), size, session_tag(s.id_hash)), now);
        !a)
        return a.error();
    queued();
    return ReplyOutcome{queue_id, {}};
}

std::string EscrowService::pre_login_csrf(std::string_view pre_cookie, std::string_view token) const {
    return keys_.mac_hex("csrf-pre", std::string(pre_cookie) + "|" + std::string(token));
}

}  // namespace mailward::escrow
