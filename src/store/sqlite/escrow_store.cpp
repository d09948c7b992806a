// Escrow over SQLite (schema versions 4 and 6, see migrations.cpp): sealed messages, their wrapped
// keys (a narrow table of their own), portal codes and sessions, and the per-message audit chain.
// Writes that queue mail or destroy secrets (sealing with its notice, a new code with its email,
// shredding, purging) run as jobs in the group-commit writer's batch; those that destroy
// secrets are "scrub" jobs, after which the writer zeroes freed spool ranges and truncates the WAL
// (secure_delete=ON zeroes the freed database space). The rest are transactions on the shared
// connection. Audit rows are handed to the audit sink after their commit (the external anchor).
#include <spdlog/spdlog.h>

#include <memory>

#include "common/wait_callback.hpp"
#include "store/code_check.hpp"
#include "store/sqlite/internal.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace mailward::store {

std::string_view to_string(EscrowState s) {
    switch (s) {
        case EscrowState::active: return "active";
        case EscrowState::revoked: return "revoked";
        case EscrowState::expired: return "expired";
        case EscrowState::purged: return "purged";
    }
    return "active";
}

std::optional<EscrowState> parse_escrow_state(std::string_view s) {
    for (auto st : {EscrowState::active, EscrowState::revoked, EscrowState::expired, EscrowState::purged})
        if (to_string(st) == s) return st;
    return std::nullopt;
}

std::string_view to_string(CodeCheck c) {
    switch (c) {
        case CodeCheck::accepted: return "accepted";
        case CodeCheck::wrong: return "wrong";
        case CodeCheck::no_code: return "no_code";
        case CodeCheck::exhausted: return "exhausted";
        case CodeCheck::locked: return "locked";
        case CodeCheck::capped: return "capped";
    }
    return "wrong";
}

}  // namespace mailward::store

namespace mailward::store::sqlite {
namespace {

// Selected FROM kFrom: the message row and its key (NULL once shredded).
constexpr const char* kColumns =
    "m.id, m.queue_id, m.rcpt_index, m.sender, m.sender_name, m.sender_mode, m.recipient, m.message_id,"
    " m.token_hash, k.wrapped_key, m.sealed, m.state, m.created, m.expires, m.ended_at, m.failed_logins,"
    " m.locked_until, m.total_failures, m.lockouts, m.receipts, m.read_receipt_sent";
constexpr const char* kFrom = " FROM escrow_messages m LEFT JOIN escrow_keys k ON k.escrow_id = m.id";

std::string select_sql(std::string_view where) {
    return std::string("SELECT ") + kColumns + kFrom + " " + std::string(where);
}

// Reads a row selected with kColumns.
Result<EscrowRecord> read_record(const Stmt& st) {
    EscrowRecord r;
    r.id = st.text(0);
    r.queue_id = st.text(1);
    r.rcpt_index = static_cast<std::size_t>(st.int64(2));
    r.sender = st.text(3);
    r.sender_name = st.text(4);
    r.sender_mode = st.text(5);
    r.recipient = st.text(6);
    r.message_id = st.text(7);
    r.token_hash = st.text(8);
    if (!st.is_null(9)) r.wrapped_key = st.blob(9);
    if (!st.is_null(10)) r.sealed = st.blob(10);
    auto state = parse_escrow_state(st.text(11));
    if (!state) return common::Errc::corrupt;
    r.state = *state;
    r.created = from_ms(st.int64(12));
    r.expires = from_ms(st.int64(13));
    if (!st.is_null(14)) r.ended_at = from_ms(st.int64(14));
    r.failed_logins = static_cast<int>(st.int64(15));
    if (!st.is_null(16)) r.locked_until = from_ms(st.int64(16));
    r.total_failures = static_cast<int>(st.int64(17));
    r.lockouts = static_cast<int>(st.int64(18));
    r.receipts = st.int64(19) != 0;
    r.read_receipt_sent = st.int64(20) != 0;
    return r;
}

Result<std::vector<EscrowRecord>> read_records(Stmt& st) {
    std::vector<EscrowRecord> out;
    for (;;) {
        auto row = st.step();
        if (!row) return row.error();
        if (!*row) break;
        auto r = read_record(st);
        if (!r) return r.error();
        out.push_back(std::move(*r));
    }
    return out;
}

Result<EscrowRecord> select_one(Db& db, std::string_view sql, const std::string& key) {
    auto st = db.prepare(sql);
    if (!st) return st.error();
    st->bind(1, key);
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) return common::Errc::not_found;
    return read_record(*st);
}

Result<EscrowSession> select_session(Db& db, const std::string& id_hash) {
    auto st = db.prepare(
        "SELECT id_hash, escrow_id, csrf, created, last_seen, ended_at FROM escrow_sessions WHERE "
        "id_hash = ?1");
    if (!st) return st.error();
    st->bind(1, id_hash);
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) return common::Errc::not_found;
    EscrowSession s;
    s.id_hash = st->text(0);
    s.escrow_id = st->text(1);
    s.csrf = st->text(2);
    s.created = from_ms(st->int64(3));
    s.last_seen = from_ms(st->int64(4));
    if (!st->is_null(5)) s.ended_at = from_ms(st->int64(5));
    return s;
}

// The audit rows one transaction appended, for the sink once it has committed.
using Appended = std::vector<EscrowAuditEntry>;

// Appends e after the newest row of its message; the caller holds a write transaction. The row,
// with its seq and hash, is added to out.
Result<void> append_in(Db& db, EscrowAuditEntry e, const AuditChain& chain, Appended& out) {
    if (e.escrow_id.empty() || e.event.empty()) return common::Errc::invalid_argument;
    {
        auto st = db.prepare("SELECT hash FROM escrow_audit WHERE escrow_id = ?1 ORDER BY seq DESC LIMIT 1");
        if (!st) return st.error();
        st->bind(1, e.escrow_id);
        auto row = st->step();
        if (!row) return row.error();
        e.prev_hash = *row ? st->text(0) : std::string();
    }
    e.hash = chain(e.prev_hash, e);
    auto st = db.prepare(
        "INSERT INTO escrow_audit (escrow_id, at, event, address, user_agent, detail, prev_hash, hash)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    if (!st) return st.error();
    st->bind(1, e.escrow_id)
        .bind(2, to_ms(e.at))
        .bind(3, e.event)
        .bind(4, e.address)
        .bind(5, e.user_agent)
        .bind(6, e.detail)
        .bind(7, e.prev_hash)
        .bind(8, e.hash);
    if (auto r = st->run(); !r) return r;
    e.seq = db.last_insert_rowid();
    out.push_back(std::move(e));
    return {};
}

Result<void> insert_record(Db& db, const EscrowRecord& r) {
    auto st = db.prepare(
        "INSERT INTO escrow_messages (id, queue_id, rcpt_index, sender, sender_name, sender_mode, recipient,"
        " message_id, token_hash, wrapped_key, sealed, state, created, expires, receipts)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, ?10, 'active', ?11, ?12, ?13)");
    if (!st) return st.error();
    st->bind(1, r.id)
        .bind(2, r.queue_id)
        .bind(3, static_cast<std::int64_t>(r.rcpt_index))
        .bind(4, r.sender)
        .bind(5, r.sender_name)
        .bind(6, r.sender_mode)
        .bind(7, r.recipient)
        .bind(8, r.message_id)
        .bind(9, r.token_hash)
        .bind_blob(10, r.sealed)
        .bind(11, to_ms(r.created))
        .bind(12, to_ms(r.expires))
        .bind(13, std::int64_t{r.receipts ? 1 : 0});
    if (auto res = st->run(); !res) return res;
    // The key in its own narrow row: never in an overflow page, never rewritten with the message's.
    auto key = db.prepare("INSERT INTO escrow_keys (escrow_id, wrapped_key) VALUES (?1, ?2)");
    if (!key) return key.error();
    key->bind(1, r.id).bind_blob(2, r.wrapped_key);
    return key->run();
}

// The sealed recipient is done; the queued body goes once nothing else needs it.
Result<void> mark_escrowed(Db& db, const std::string& queue_id, std::size_t idx, const std::string& escrow_id) {
    auto st = db.prepare(
        "UPDATE recipients SET state = 'escrowed', last_error = ?3"
        " WHERE message_id = ?1 AND idx = ?2 AND state = 'awaiting_escrow'");
    if (!st) return st.error();
    std::string note = "sealed in escrow " + escrow_id + ", notice queued";
    st->bind(1, queue_id).bind(2, static_cast<std::int64_t>(idx)).bind(3, note);
    if (auto r = st->run(); !r) return r;
    if (db.changes() == 0) return common::Errc::already_exists;  // no longer awaiting escrow
    auto del = db.prepare(
        "DELETE FROM bodies WHERE message_id = ?1 AND NOT EXISTS (SELECT 1 FROM recipients"
        " WHERE message_id = ?1 AND state IN ('queued', 'awaiting_escrow'))");
    if (!del) return del.error();
    del->bind(1, queue_id);
    return del->run();
}

}  // namespace

Result<void> SqliteEscrowStore::run_in_writer(GroupWriter::Job job, bool scrub) {
    auto submit = [&](auto done) { writer_.submit_job(std::move(job), std::move(done), scrub); };
    return common::wait_callback<Result<void>>(submit);
}

void SqliteEscrowStore::set_audit_sink(AuditSink sink) {
    std::lock_guard lk(sink_mu_);
    sink_ = std::move(sink);
}

void SqliteEscrowStore::committed(const std::vector<EscrowAuditEntry>& rows) {
    if (rows.empty()) return;
    AuditSink sink;
    {
        std::lock_guard lk(sink_mu_);
        sink = sink_;
    }
    if (sink) sink(rows);
}

Result<std::vector<Envelope>> SqliteEscrowStore::awaiting_seal(std::size_t limit) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, false);
    if (!tx) return tx.error();
    std::vector<std::string> ids;
    {
        auto st = conn_.db.prepare(std::string(kSelectMessageIds) +
                                   " WHERE r.state = 'awaiting_escrow' ORDER BY m.received_at LIMIT ?1");
        if (!st) return st.error();
        st->bind(1, static_cast<std::int64_t>(limit));
        auto r = read_ids(*st);
        if (!r) return r.error();
        ids = std::move(*r);
    }
    std::vector<Envelope> out;
    for (const auto& id : ids) {
        auto env = read_envelope(conn_.db, id);
        if (!env) return env.error();
        out.push_back(std::move(*env));
    }
    return out;
}

void SqliteEscrowStore::create(EscrowRecord rec, EscrowAuditEntry first, StoredMessage notice, AuditChain chain,
                               Done done) {
    if (rec.id.empty() || rec.token_hash.empty() || rec.wrapped_key.empty() || rec.sealed.empty() ||
        notice.envelope.id.empty() || notice.envelope.recipients.empty()) {
        if (done) done(common::Errc::invalid_argument);
        return;
    }
    first.escrow_id = rec.id;
    auto appended = std::make_shared<Appended>();
    // A scrub job: the queued plaintext body it deletes must not outlive it in the WAL or spool.
    writer_.submit_job(
        [rec = std::move(rec), first = std::move(first), notice = std::move(notice), chain = std::move(chain),
         appended](Db& db) mutable -> Result<void> {
            appended->clear();
            if (auto r = mark_escrowed(db, rec.queue_id, rec.rcpt_index, rec.id); !r) return r;
            if (auto r = insert_record(db, rec); !r) return r;
            if (auto r = append_in(db, first, chain, *appended); !r) return r;
            if (auto r = insert_message(db, notice); !r) return r;
            EscrowAuditEntry sent = first;
            sent.event = std::string(escrow_event::notice_sent);
            sent.detail = "notice " + notice.envelope.id + " queued for delivery to " + rec.recipient;
            return append_in(db, sent, chain, *appended);
        },
        [this, appended, done = std::move(done)](Result<void> r) {
            if (r) committed(*appended);
            if (done) done(r);
        },
        true);
}

Result<EscrowRecord> SqliteEscrowStore::get(const std::string& id) {
    std::lock_guard lk(conn_.mu);
    static const std::string sql = select_sql("WHERE m.id = ?1");
    return select_one(conn_.db, sql, id);
}

Result<EscrowRecord> SqliteEscrowStore::find_by_token(const std::string& token_hash) {
    std::lock_guard lk(conn_.mu);
    static const std::string sql = select_sql("WHERE m.token_hash = ?1");
    return select_one(conn_.db, sql, token_hash);
}

Result<std::vector<EscrowRecord>> SqliteEscrowStore::list(bool include_ended) {
    std::lock_guard lk(conn_.mu);
    static const std::string all = select_sql("ORDER BY m.created DESC, m.id");
    static const std::string active = select_sql("WHERE m.state = 'active' ORDER BY m.created DESC, m.id");
    auto st = conn_.db.prepare(include_ended ? all : active);
    if (!st) return st.error();
    return read_records(*st);
}

Result<void> SqliteEscrowStore::shred(const std::string& id, EscrowState to, EscrowTime now, EscrowAuditEntry audit,
                                      const AuditChain& chain) {
    if (to != EscrowState::revoked && to != EscrowState::expired) return common::Errc::invalid_argument;
    audit.escrow_id = id;
    if (auto rec = get(id); !rec) return rec.error();
    else if (rec->state != EscrowState::active) return common::Errc::already_exists;  // (checked again in the job)
    Appended appended;
    // A scrub job: once it has committed, the writer truncates the WAL, so no page image with the
    // key is left anywhere (the key's cell itself is zeroed by secure_delete).
    auto r = run_in_writer(
        [&](Db& db) -> Result<void> {
            appended.clear();
            static const std::string sql = select_sql("WHERE m.id = ?1");
            auto rec = select_one(db, sql, id);
            if (!rec) return rec.error();
            if (rec->state != EscrowState::active) return common::Errc::already_exists;
            auto del = db.prepare("DELETE FROM escrow_keys WHERE escrow_id = ?1");
            if (!del) return del.error();
            del->bind(1, id);
            if (auto res = del->run(); !res) return res;
            auto st =
                db.prepare("UPDATE escrow_messages SET wrapped_key = NULL, state = ?2, ended_at = ?3 WHERE id = ?1");
            if (!st) return st.error();
            st->bind(1, id).bind(2, to_string(to)).bind(3, to_ms(now));
            if (auto res = st->run(); !res) return res;
            auto end = db.prepare("UPDATE escrow_sessions SET ended_at = ?2 WHERE escrow_id = ?1 AND ended_at IS NULL");
            if (!end) return end.error();
            end->bind(1, id).bind(2, to_ms(now));
            if (auto res = end->run(); !res) return res;
            return append_in(db, audit, chain, appended);
        },
        true);
    if (r) committed(appended);
    return r;
}

Result<void> SqliteEscrowStore::purge(const std::string& id, EscrowTime now, EscrowAuditEntry audit,
                                      const AuditChain& chain) {
    audit.escrow_id = id;
    audit.at = now;
    if (auto rec = get(id); !rec) return rec.error();
    else if (rec->state == EscrowState::active || rec->state == EscrowState::purged)
        return common::Errc::already_exists;  // (checked again in the job)
    Appended appended;
    auto r = run_in_writer(
        [&](Db& db) -> Result<void> {
            appended.clear();
            static const std::string sql = select_sql("WHERE m.id = ?1");
            auto rec = select_one(db, sql, id);
            if (!rec) return rec.error();
            if (rec->state == EscrowState::active || rec->state == EscrowState::purged)
                return common::Errc::already_exists;
            for (const char* del :
                 {"UPDATE escrow_messages SET sealed = NULL, wrapped_key = NULL, state = 'purged'"
                  " WHERE id = ?1",
                  "DELETE FROM escrow_keys WHERE escrow_id = ?1", "DELETE FROM escrow_codes WHERE escrow_id = ?1",
                  "DELETE FROM escrow_sessions WHERE escrow_id = ?1"}) {
                auto d = db.prepare(del);
                if (!d) return d.error();
                d->bind(1, id);
                if (auto res = d->run(); !res) return res;
            }
            return append_in(db, audit, chain, appended);
        },
        true);
    if (r) committed(appended);
    return r;
}

Result<std::vector<std::string>> SqliteEscrowStore::expired_ids(EscrowTime now) {
    std::lock_guard lk(conn_.mu);
    auto st =
        conn_.db.prepare("SELECT id FROM escrow_messages WHERE state = 'active' AND expires <= ?1 ORDER BY expires");
    if (!st) return st.error();
    st->bind(1, to_ms(now));
    return read_ids(*st);
}

Result<std::vector<std::string>> SqliteEscrowStore::read_receipts_due() {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(
        "SELECT id FROM escrow_messages m WHERE receipts = 1 AND read_receipt_sent = 0 AND state = 'active'"
        " AND EXISTS (SELECT 1 FROM escrow_audit a WHERE a.escrow_id = m.id AND a.event = 'viewed')"
        " ORDER BY created");
    if (!st) return st.error();
    return read_ids(*st);
}

Result<bool> SqliteEscrowStore::mark_read_receipt(const std::string& id) {
    std::lock_guard lk(conn_.mu);
    auto st =
        conn_.db.prepare("UPDATE escrow_messages SET read_receipt_sent = 1 WHERE id = ?1 AND read_receipt_sent = 0");
    if (!st) return Result<bool>(boost::system::in_place_error, st.error());
    st->bind(1, id);
    if (auto r = st->run(); !r) return Result<bool>(boost::system::in_place_error, r.error());
    if (conn_.db.changes() > 0) return true;
    auto exists = conn_.db.prepare("SELECT 1 FROM escrow_messages WHERE id = ?1");
    if (!exists) return Result<bool>(boost::system::in_place_error, exists.error());
    exists->bind(1, id);
    auto row = exists->step();
    if (!row) return Result<bool>(boost::system::in_place_error, row.error());
    if (!*row) return Result<bool>(boost::system::in_place_error, common::Errc::not_found);
    return false;
}

Result<std::vector<std::string>> SqliteEscrowStore::purgeable_ids(EscrowTime ended_before) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(
        "SELECT id FROM escrow_messages WHERE state IN ('revoked', 'expired') AND ended_at < ?1 ORDER BY ended_at");
    if (!st) return st.error();
    st->bind(1, to_ms(ended_before));
    return read_ids(*st);
}

Result<int> SqliteEscrowStore::codes_sent_since(const std::string& id, EscrowTime since) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare("SELECT count(*) FROM escrow_codes WHERE escrow_id = ?1 AND created >= ?2");
    if (!st) return st.error();
    st->bind(1, id).bind(2, to_ms(since));
    auto row = st->step();
    if (!row) return row.error();
    return *row ? static_cast<int>(st->int64(0)) : 0;
}

Result<void> SqliteEscrowStore::add_code(const std::string& id, const std::string& code_hash, bool strong,
                                         EscrowTime now, EscrowTime expires, StoredMessage msg, EscrowAuditEntry audit,
                                         const AuditChain& chain) {
    if (id.empty() || code_hash.empty() || msg.envelope.id.empty()) return common::Errc::invalid_argument;
    audit.escrow_id = id;
    Appended appended;
    auto r = run_in_writer([&](Db& db) -> Result<void> {
        appended.clear();
        auto retire = db.prepare("UPDATE escrow_codes SET live = 0 WHERE escrow_id = ?1 AND live = 1");
        if (!retire) return retire.error();
        retire->bind(1, id);
        if (auto res = retire->run(); !res) return res;
        auto st = db.prepare(
            "INSERT INTO escrow_codes (escrow_id, code_hash, created, expires, strong) VALUES (?1, ?2, ?3, ?4, ?5)");
        if (!st) return st.error();
        st->bind(1, id).bind(2, code_hash).bind(3, to_ms(now)).bind(4, to_ms(expires)).bind(5, std::int64_t{strong});
        if (auto res = st->run(); !res) return res;
        if (auto res = append_in(db, audit, chain, appended); !res) return res;
        return insert_message(db, msg);
    });
    if (r) committed(appended);
    return r;
}

namespace {

// Voids the live short codes of id (a lockout, the failure cap).
Result<void> void_short_codes(Db& db, const std::string& id) {
    auto st = db.prepare("UPDATE escrow_codes SET live = 0 WHERE escrow_id = ?1 AND live = 1 AND strong = 0");
    if (!st) return st.error();
    st->bind(1, id);
    return st->run();
}

}  // namespace

Result<CodeCheck> SqliteEscrowStore::check_code(const std::string& id, const std::string& code_hash, EscrowTime now,
                                                const CodeRules& rules, EscrowAuditEntry audit,
                                                const AuditChain& chain) {
    Appended appended;
    CodeDecision d;
    {
        std::lock_guard lk(conn_.mu);
        auto& db = conn_.db;
        auto tx = Tx::begin(db, true);
        if (!tx) return tx.error();
        static const std::string sql = select_sql("WHERE m.id = ?1");
        auto rec = select_one(db, sql, id);
        if (!rec) return rec.error();
        auto st = db.prepare(
            "SELECT id, code_hash, tries, strong FROM escrow_codes WHERE escrow_id = ?1 AND live = 1 AND expires > ?2"
            " ORDER BY id DESC LIMIT 1");
        if (!st) return st.error();
        st->bind(1, id).bind(2, to_ms(now));
        auto row = st->step();
        if (!row) return row.error();
        std::optional<LiveCode> code;
        std::int64_t code_id = 0;
        if (*row) {
            code_id = st->int64(0);
            code = LiveCode{st->text(1), st->int64(2), st->int64(3) != 0};
        }
        st->reset();
        d = decide_code({rec->failed_logins, rec->locked_until, rec->total_failures, rec->lockouts}, code, code_hash,
                        now, rules);
        if (!d.write) return d.result;
        auto upd_code = db.prepare(d.use_code ? "UPDATE escrow_codes SET live = 0 WHERE id = ?1"
                                              : "UPDATE escrow_codes SET tries = tries + 1 WHERE id = ?1");
        if (!upd_code) return upd_code.error();
        upd_code->bind(1, code_id);
        if (auto r = upd_code->run(); !r) return r.error();
        auto upd = db.prepare(
            "UPDATE escrow_messages SET failed_logins = ?2, locked_until = ?3, total_failures = ?4, lockouts = ?5"
            " WHERE id = ?1");
        if (!upd) return upd.error();
        upd->bind(1, id).bind(2, std::int64_t{d.next.failed_logins});
        if (d.next.locked_until) upd->bind(3, to_ms(*d.next.locked_until));
        else upd->bind_null(3);
        upd->bind(4, std::int64_t{d.next.total_failures}).bind(5, std::int64_t{d.next.lockouts});
        if (auto r = upd->run(); !r) return r.error();
        if (d.void_short_codes)
            if (auto r = void_short_codes(db, id); !r) return r.error();
        audit.escrow_id = id;
        audit.at = now;
        audit.event = std::string(d.event);
        audit.detail = d.detail;
        if (auto r = append_in(db, std::move(audit), chain, appended); !r) return r.error();
        if (auto r = tx->commit(); !r) return r.error();
    }
    committed(appended);
    return d.result;
}

Result<void> SqliteEscrowStore::create_session(const EscrowSession& s) {
    if (s.id_hash.empty() || s.escrow_id.empty() || s.csrf.empty()) return common::Errc::invalid_argument;
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(
        "INSERT INTO escrow_sessions (id_hash, escrow_id, csrf, created, last_seen) VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!st) return st.error();
    st->bind(1, s.id_hash).bind(2, s.escrow_id).bind(3, s.csrf).bind(4, to_ms(s.created)).bind(5, to_ms(s.last_seen));
    return st->run();
}

Result<EscrowSession> SqliteEscrowStore::session(const std::string& id_hash) {
    std::lock_guard lk(conn_.mu);
    return select_session(conn_.db, id_hash);
}

Result<void> SqliteEscrowStore::touch_session(const std::string& id_hash, EscrowTime now) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare("UPDATE escrow_sessions SET last_seen = ?2 WHERE id_hash = ?1 AND ended_at IS NULL");
    if (!st) return st.error();
    st->bind(1, id_hash).bind(2, to_ms(now));
    if (auto r = st->run(); !r) return r;
    if (conn_.db.changes() == 0) return common::Errc::not_found;
    return {};
}

Result<void> SqliteEscrowStore::end_session(const std::string& id_hash, EscrowTime now) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare("UPDATE escrow_sessions SET ended_at = ?2 WHERE id_hash = ?1 AND ended_at IS NULL");
    if (!st) return st.error();
    st->bind(1, id_hash).bind(2, to_ms(now));
    return st->run();
}

Result<void> SqliteEscrowStore::end_sessions_of(const std::string& id, EscrowTime now) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare("UPDATE escrow_sessions SET ended_at = ?2 WHERE escrow_id = ?1 AND ended_at IS NULL");
    if (!st) return st.error();
    st->bind(1, id).bind(2, to_ms(now));
    return st->run();
}

Result<void> SqliteEscrowStore::append_audit(EscrowAuditEntry e, const AuditChain& chain) {
    Appended appended;
    {
        std::lock_guard lk(conn_.mu);
        auto tx = Tx::begin(conn_.db, true);
        if (!tx) return tx.error();
        if (auto r = append_in(conn_.db, std::move(e), chain, appended); !r) return r;
        if (auto r = tx->commit(); !r) return r;
    }
    committed(appended);
    return {};
}

Result<std::vector<EscrowAuditEntry>> SqliteEscrowStore::audit(const std::string& id) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(
        "SELECT seq, escrow_id, at, event, address, user_agent, detail, prev_hash, hash FROM escrow_audit"
        " WHERE escrow_id = ?1 ORDER BY seq");
    if (!st) return st.error();
    st->bind(1, id);
    std::vector<EscrowAuditEntry> out;
    for (;;) {
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) break;
        EscrowAuditEntry e;
        e.seq = st->int64(0);
        e.escrow_id = st->text(1);
        e.at = from_ms(st->int64(2));
        e.event = st->text(3);
        e.address = st->text(4);
        e.user_agent = st->text(5);
        e.detail = st->text(6);
        e.prev_hash = st->text(7);
        e.hash = st->text(8);
        out.push_back(std::move(e));
    }
    return out;
}

// The key holder's read-only view (store/escrow_reader.hpp): its own read-only connection, the
// same SELECTs as the store's.
class SqliteEscrowReader final : public EscrowReader {
  public:
    explicit SqliteEscrowReader(Db db) : db_(std::move(db)) {}
    Result<EscrowRecord> get(const std::string& id) override {
        static const std::string sql = select_sql("WHERE m.id = ?1");
        return select_one(db_, sql, id);
    }
    Result<EscrowSession> session(const std::string& id_hash) override { return select_session(db_, id_hash); }

  private:
    Db db_;
};

Result<std::unique_ptr<EscrowReader>> open_escrow_reader(const std::filesystem::path& file, int busy_timeout_ms) {
    auto db = Db::open_readonly(file, busy_timeout_ms);
    if (!db) return db.error();
    return std::unique_ptr<EscrowReader>(new SqliteEscrowReader(std::move(*db)));
}

}  // namespace mailward::store::sqlite
