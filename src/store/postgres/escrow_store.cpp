// Escrow over PostgreSQL (schema version 3): sealed messages, their wrapped keys (a narrow table of
// their own), portal codes and sessions, and the per-message audit chain, with the SQLite store's
// semantics for several nodes on one database. Sealing (with its notice), new codes (with their
// email), shredding and purging run as jobs in the group-commit writer's batch; the rest are short
// transactions on the shared connection. After a shred commits, VACUUM escrow_keys removes the
// deleted key's dead tuple (what PostgreSQL still keeps after that: docs/design.md). Audit rows go to
// the audit sink after their commit. bytea and integers are read in binary (one result format).
#include "store/postgres/escrow_store.hpp"

#include <spdlog/spdlog.h>

#include <cstring>

#include "common/wait_callback.hpp"
#include "store/code_check.hpp"

namespace mailward::store::postgres {
namespace {

// ---- reading binary results ----
// A bigint column of a binary result (network byte order).
std::int64_t be64(const Rows& rows, int row, int col) {
    const std::string v = rows.text(row, col);
    std::uint64_t u = 0;
    for (std::size_t i = 0; i < v.size() && i < 8; ++i) u = (u << 8) | static_cast<unsigned char>(v[i]);
    return static_cast<std::int64_t>(u);
}

// Selected FROM kFrom, in binary: the message row and its key (NULL once shredded); integers as bigint.
constexpr const char* kColumns =
    "m.id, m.queue_id, m.rcpt_index::bigint, m.sender, m.sender_name, m.sender_mode, m.recipient, m.message_id,"
    " m.token_hash, k.wrapped_key, m.sealed, m.state, m.created, m.expires, m.ended_at, m.failed_logins::bigint,"
    " m.locked_until, m.total_failures::bigint, m.lockouts::bigint, m.receipts::int::bigint,"
    " m.read_receipt_sent::int::bigint";
constexpr const char* kFrom = " FROM escrow_messages m LEFT JOIN escrow_keys k ON k.escrow_id = m.id";

std::string select_sql(std::string_view where) {
    return std::string("SELECT ") + kColumns + kFrom + " " + std::string(where);
}

Result<EscrowRecord> read_record(const Rows& rs, int i) {
    EscrowRecord r;
    r.id = rs.text(i, 0);
    r.queue_id = rs.text(i, 1);
    r.rcpt_index = static_cast<std::size_t>(be64(rs, i, 2));
    r.sender = rs.text(i, 3);
    r.sender_name = rs.text(i, 4);
    r.sender_mode = rs.text(i, 5);
    r.recipient = rs.text(i, 6);
    r.message_id = rs.text(i, 7);
    r.token_hash = rs.text(i, 8);
    if (!rs.is_null(i, 9)) r.wrapped_key = rs.text(i, 9);
    if (!rs.is_null(i, 10)) r.sealed = rs.text(i, 10);
    auto state = parse_escrow_state(rs.text(i, 11));
    if (!state) {
        spdlog::error("store: escrow message {} has an unknown state", r.id);
        return common::Errc::corrupt;
    }
    r.state = *state;
    r.created = from_ms(be64(rs, i, 12));
    r.expires = from_ms(be64(rs, i, 13));
    if (!rs.is_null(i, 14)) r.ended_at = from_ms(be64(rs, i, 14));
    r.failed_logins = static_cast<int>(be64(rs, i, 15));
    if (!rs.is_null(i, 16)) r.locked_until = from_ms(be64(rs, i, 16));
    r.total_failures = static_cast<int>(be64(rs, i, 17));
    r.lockouts = static_cast<int>(be64(rs, i, 18));
    r.receipts = be64(rs, i, 19) != 0;
    r.read_receipt_sent = be64(rs, i, 20) != 0;
    return r;
}

Result<EscrowRecord> select_one(Conn& c, const std::string& sql, const std::string& key) {
    auto rs = c.exec(sql.c_str(), Params().text(key), true);
    if (!rs) return rs.error();
    if (rs->size() == 0) return common::Errc::not_found;
    return read_record(*rs, 0);
}

const std::string& by_id() {
    static const std::string sql = select_sql("WHERE m.id = $1");
    return sql;
}
// The same, locking the message's row until the transaction ends (the chain and counters' order).
const std::string& by_id_locked() {
    static const std::string sql = select_sql("WHERE m.id = $1 FOR NO KEY UPDATE OF m");
    return sql;
}

Result<EscrowSession> select_session(Conn& c, const std::string& id_hash) {
    auto rs =
        c.exec("SELECT id_hash, escrow_id, csrf, created, last_seen, ended_at FROM escrow_sessions WHERE id_hash = $1",
               Params().text(id_hash));
    if (!rs) return rs.error();
    if (rs->size() == 0) return common::Errc::not_found;
    EscrowSession s;
    s.id_hash = rs->text(0, 0);
    s.escrow_id = rs->text(0, 1);
    s.csrf = rs->text(0, 2);
    s.created = from_ms(rs->int64(0, 3));
    s.last_seen = from_ms(rs->int64(0, 4));
    if (!rs->is_null(0, 5)) s.ended_at = from_ms(rs->int64(0, 5));
    return s;
}

Result<std::vector<std::string>> first_column(Result<Rows> rs) {
    if (!rs) return rs.error();
    std::vector<std::string> out;
    for (int i = 0; i < rs->size(); ++i) out.push_back(rs->text(i, 0));
    return out;
}

// The audit rows one transaction appended, for the sink once it has committed.
using Appended = std::vector<EscrowAuditEntry>;

// Appends e after the newest row of its message inside the caller's transaction; the row, with its
// seq and hash, is added to out.
// The chain under concurrency: two nodes (or this node's writer and shared connection) may append to
// one message at once. Under READ COMMITTED both would read the same head and fork the chain, so the
// head is read only after taking a transaction-scoped advisory lock on the message id
// (pg_advisory_xact_lock(<escrow audit>, hashtext(id)), held until COMMIT or ROLLBACK): a second
// appender waits for the first to commit, and its SELECT - a new statement, so a new snapshot under
// READ COMMITTED - then sees the first one's row as the head. The lock works whether or not the
// message's row exists; the lock is taken in its own statement because a statement's snapshot is
// taken before it runs. The unique (escrow_id, prev_hash) in the schema refuses a fork regardless.
// seq follows the chain: the second appender inserts (draws its seq) only after the first committed.
Result<void> append_in(Conn& c, EscrowAuditEntry e, const AuditChain& chain, Appended& out) {
    if (e.escrow_id.empty() || e.event.empty()) return common::Errc::invalid_argument;
    // 0x4d57 ("MW") + 1: the escrow audit's lock space (two int4 keys: apart from the bigint keys).
    if (auto r = c.exec("SELECT pg_advisory_xact_lock(19800, hashtext($1))", Params().text(e.escrow_id)); !r)
        return r.error();
    auto head = c.exec("SELECT hash FROM escrow_audit WHERE escrow_id = $1 ORDER BY seq DESC LIMIT 1",
                       Params().text(e.escrow_id));
    if (!head) return head.error();
    e.prev_hash = head->size() > 0 ? head->text(0, 0) : std::string();
    e.hash = chain(e.prev_hash, e);
    auto ins = c.exec(
        "INSERT INTO escrow_audit (escrow_id, at, event, address, user_agent, detail, prev_hash, hash)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq",
        Params()
            .text(e.escrow_id)
            .int64(to_ms(e.at))
            .text(e.event)
            .text(e.address)
            .text(e.user_agent)
            .text(e.detail)
            .text(e.prev_hash)
            .text(e.hash));
    if (!ins) return ins.error();
    e.seq = ins->int64(0, 0);
    out.push_back(std::move(e));
    return {};
}

Result<void> insert_record(Conn& c, const EscrowRecord& r) {
    auto m = c.exec(
        "INSERT INTO escrow_messages (id, queue_id, rcpt_index, sender, sender_name, sender_mode, recipient,"
        " message_id, token_hash, sealed, state, created, expires, receipts)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $11, $12, $13)",
        Params()
            .text(r.id)
            .text(r.queue_id)
            .int64(static_cast<std::int64_t>(r.rcpt_index))
            .text(r.sender)
            .text(r.sender_name)
            .text(r.sender_mode)
            .text(r.recipient)
            .text(r.message_id)
            .text(r.token_hash)
            .bytea(r.sealed)
            .int64(to_ms(r.created))
            .int64(to_ms(r.expires))
            .boolean(r.receipts));
    if (!m) return m.error();
    // The key in its own narrow row: never rewritten with the message's row (state, counters).
    auto k = c.exec("INSERT INTO escrow_keys (escrow_id, wrapped_key) VALUES ($1, $2)",
                    Params().text(r.id).bytea(r.wrapped_key));
    if (!k) return k.error();
    return {};
}

// The sealed recipient is done; the queued body goes once nothing else needs it. The queue row is
// locked first: two nodes sealing two recipients of one message would otherwise each still see the
// other's recipient awaiting escrow and neither would delete the plaintext body.
Result<void> mark_escrowed(Conn& c, const std::string& queue_id, std::size_t idx, const std::string& escrow_id) {
    auto lock = c.exec("SELECT 1 FROM messages WHERE id = $1 FOR NO KEY UPDATE", Params().text(queue_id));
    if (!lock) return lock.error();
    if (lock->size() == 0) return common::Errc::already_exists;  // removed meanwhile: no longer awaiting
    auto up = c.exec(
        "UPDATE recipients SET state = 'escrowed', last_error = $3"
        " WHERE message_id = $1 AND idx = $2 AND state = 'awaiting_escrow'",
        Params()
            .text(queue_id)
            .int64(static_cast<std::int64_t>(idx))
            .text("sealed in escrow " + escrow_id + ", notice queued"));
    if (!up) return up.error();
    if (up->affected() == 0) return common::Errc::already_exists;  // no longer awaiting escrow
    auto del = c.exec(
        "DELETE FROM bodies WHERE message_id = $1 AND NOT EXISTS (SELECT 1 FROM recipients"
        " WHERE message_id = $1 AND state IN ('queued', 'awaiting_escrow'))",
        Params().text(queue_id));
    if (!del) return del.error();
    return {};
}

// Runs each statement with $1 = id.
Result<void> run_each(Conn& c, std::initializer_list<const char*> sqls, const std::string& id) {
    for (const char* sql : sqls)
        if (auto r = c.exec(sql, Params().text(id)); !r) return r.error();
    return {};
}

}  // namespace

Result<void> PgEscrowStore::run_in_writer(PgWriter::Job job) {
    auto submit = [&](auto done) { writer_.submit_job(std::move(job), std::move(done)); };
    return common::wait_callback<Result<void>>(submit);
}

void PgEscrowStore::set_audit_sink(AuditSink sink) {
    std::lock_guard lk(sink_mu_);
    sink_ = std::move(sink);
}

void PgEscrowStore::committed(const std::vector<EscrowAuditEntry>& rows) {
    if (rows.empty()) return;
    AuditSink sink;
    {
        std::lock_guard lk(sink_mu_);
        sink = sink_;
    }
    if (sink) sink(rows);
}

void PgEscrowStore::vacuum_keys() {
    // Outside any transaction (VACUUM refuses to run in one). Dead tuples still visible to an older
    // snapshot (a long transaction on any node) stay until that ends; autovacuum removes them later.
    std::lock_guard lk(conn_.mu);
    if (auto r = conn_.conn.command("VACUUM escrow_keys"); !r)
        spdlog::error("store: VACUUM escrow_keys after a shred failed: {} (autovacuum will remove the dead key later)",
                      r.error().message());
}

Result<std::vector<Envelope>> PgEscrowStore::awaiting_seal(std::size_t limit) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (!tx) return tx.error();
    auto ids =
        first_column(conn_.conn.exec("SELECT r.message_id FROM recipients r JOIN messages m ON m.id = r.message_id"
                                     " WHERE r.state = 'awaiting_escrow' GROUP BY r.message_id, m.received_at"
                                     " ORDER BY m.received_at, r.message_id COLLATE \"C\" LIMIT $1",
                                     Params().int64(static_cast<std::int64_t>(limit))));
    if (!ids) return ids.error();
    std::vector<Envelope> out;
    for (const auto& id : *ids) {
        auto env = read_envelope(conn_.conn, id);
        if (!env) return env.error();
        out.push_back(std::move(*env));
    }
    return out;
}

void PgEscrowStore::create(EscrowRecord rec, EscrowAuditEntry first, StoredMessage notice, AuditChain chain,
                           Done done) {
    if (rec.id.empty() || rec.token_hash.empty() || rec.wrapped_key.empty() || rec.sealed.empty() ||
        notice.envelope.id.empty() || notice.envelope.recipients.empty()) {
        if (done) done(common::Errc::invalid_argument);
        return;
    }
    first.escrow_id = rec.id;
    auto appended = std::make_shared<Appended>();
    // Two nodes sealing the same recipient: the second's UPDATE of the recipient waits for the
    // first's batch, then finds it escrowed (READ COMMITTED re-checks the row) and is refused.
    writer_.submit_job(
        [rec = std::move(rec), first = std::move(first), notice = std::move(notice), chain = std::move(chain),
         appended](Conn& c) mutable -> Result<void> {
            appended->clear();
            if (auto r = mark_escrowed(c, rec.queue_id, rec.rcpt_index, rec.id); !r) return r;
            if (auto r = insert_record(c, rec); !r) return r;
            if (auto r = append_in(c, first, chain, *appended); !r) return r;
            if (auto r = insert_message(c, notice); !r) return r;
            EscrowAuditEntry sent = first;
            sent.event = std::string(escrow_event::notice_sent);
            sent.detail = "notice " + notice.envelope.id + " queued for delivery to " + rec.recipient;
            return append_in(c, sent, chain, *appended);
        },
        [this, appended, done = std::move(done)](Result<void> r) {
            if (r) committed(*appended);
            if (done) done(r);
        });
}

Result<EscrowRecord> PgEscrowStore::get(const std::string& id) {
    std::lock_guard lk(conn_.mu);
    return select_one(conn_.conn, by_id(), id);
}

Result<EscrowRecord> PgEscrowStore::find_by_token(const std::string& token_hash) {
    std::lock_guard lk(conn_.mu);
    static const std::string sql = select_sql("WHERE m.token_hash = $1");
    return select_one(conn_.conn, sql, token_hash);
}

Result<std::vector<EscrowRecord>> PgEscrowStore::list(bool include_ended) {
    std::lock_guard lk(conn_.mu);
    static const std::string all = select_sql("ORDER BY m.created DESC, m.id COLLATE \"C\"");
    static const std::string active =
        select_sql("WHERE m.state = 'active' ORDER BY m.created DESC, m.id COLLATE \"C\"");
    auto rs = conn_.conn.exec((include_ended ? all : active).c_str(), {}, true);
    if (!rs) return rs.error();
    std::vector<EscrowRecord> out;
    for (int i = 0; i < rs->size(); ++i) {
        auto r = read_record(*rs, i);
        if (!r) return r.error();
        out.push_back(std::move(*r));
    }
    return out;
}

Result<void> PgEscrowStore::shred(const std::string& id, EscrowState to, EscrowTime now, EscrowAuditEntry audit,
                                  const AuditChain& chain) {
    if (to != EscrowState::revoked && to != EscrowState::expired) return common::Errc::invalid_argument;
    audit.escrow_id = id;
    if (auto rec = get(id); !rec) return rec.error();
    else if (rec->state != EscrowState::active) return common::Errc::already_exists;  // (checked again in the job)
    Appended appended;
    auto r = run_in_writer([&](Conn& c) -> Result<void> {
        appended.clear();
        // Locked: a shred racing on another node waits here, then sees the state it committed.
        auto rec = select_one(c, by_id_locked(), id);
        if (!rec) return rec.error();
        if (rec->state != EscrowState::active) return common::Errc::already_exists;
        if (auto res = c.exec("DELETE FROM escrow_keys WHERE escrow_id = $1", Params().text(id)); !res)
            return res.error();
        if (auto res = c.exec("UPDATE escrow_messages SET state = $2, ended_at = $3 WHERE id = $1",
                              Params().text(id).text(to_string(to)).int64(to_ms(now)));
            !res)
            return res.error();
        if (auto res = c.exec("UPDATE escrow_sessions SET ended_at = $2 WHERE escrow_id = $1 AND ended_at IS NULL",
                              Params().text(id).int64(to_ms(now)));
            !res)
            return res.error();
        return append_in(c, audit, chain, appended);
    });
    if (!r) return r;
    committed(appended);
    vacuum_keys();
    return {};
}

Result<void> PgEscrowStore::purge(const std::string& id, EscrowTime now, EscrowAuditEntry audit,
                                  const AuditChain& chain) {
    audit.escrow_id = id;
    audit.at = now;
    if (auto rec = get(id); !rec) return rec.error();
    else if (rec->state == EscrowState::active || rec->state == EscrowState::purged)
        return common::Errc::already_exists;  // (checked again in the job)
    Appended appended;
    auto r = run_in_writer([&](Conn& c) -> Result<void> {
        appended.clear();
        auto rec = select_one(c, by_id_locked(), id);
        if (!rec) return rec.error();
        if (rec->state == EscrowState::active || rec->state == EscrowState::purged) return common::Errc::already_exists;
        if (auto res = run_each(
                c,
                {"UPDATE escrow_messages SET sealed = NULL, state = 'purged' WHERE id = $1",
                 "DELETE FROM escrow_keys WHERE escrow_id = $1", "DELETE FROM escrow_codes WHERE escrow_id = $1",
                 "DELETE FROM escrow_sessions WHERE escrow_id = $1"},
                id);
            !res)
            return res;
        return append_in(c, audit, chain, appended);
    });
    if (r) committed(appended);
    return r;
}

Result<std::vector<std::string>> PgEscrowStore::expired_ids(EscrowTime now) {
    std::lock_guard lk(conn_.mu);
    return first_column(conn_.conn.exec(
        "SELECT id FROM escrow_messages WHERE state = 'active' AND expires <= $1 ORDER BY expires, id COLLATE \"C\"",
        Params().int64(to_ms(now))));
}

Result<std::vector<std::string>> PgEscrowStore::read_receipts_due() {
    std::lock_guard lk(conn_.mu);
    return first_column(
        conn_.conn.exec("SELECT id FROM escrow_messages m WHERE receipts AND NOT read_receipt_sent AND state = 'active'"
                        " AND EXISTS (SELECT 1 FROM escrow_audit a WHERE a.escrow_id = m.id AND a.event = 'viewed')"
                        " ORDER BY created, id COLLATE \"C\""));
}

Result<bool> PgEscrowStore::mark_read_receipt(const std::string& id) {
    std::lock_guard lk(conn_.mu);
    auto r =
        conn_.conn.exec("UPDATE escrow_messages SET read_receipt_sent = true WHERE id = $1 AND NOT read_receipt_sent",
                        Params().text(id));
    if (!r) return Result<bool>(boost::system::in_place_error, r.error());
    if (r->affected() > 0) return true;
    auto e = conn_.conn.exec("SELECT 1 FROM escrow_messages WHERE id = $1", Params().text(id));
    if (!e) return Result<bool>(boost::system::in_place_error, e.error());
    if (e->size() == 0) return Result<bool>(boost::system::in_place_error, common::Errc::not_found);
    return false;
}

Result<std::vector<std::string>> PgEscrowStore::purgeable_ids(EscrowTime ended_before) {
    std::lock_guard lk(conn_.mu);
    return first_column(
        conn_.conn.exec("SELECT id FROM escrow_messages WHERE state IN ('revoked', 'expired') AND ended_at < $1"
                        " ORDER BY ended_at, id COLLATE \"C\"",
                        Params().int64(to_ms(ended_before))));
}

Result<int> PgEscrowStore::codes_sent_since(const std::string& id, EscrowTime since) {
    std::lock_guard lk(conn_.mu);
    auto rs = conn_.conn.exec("SELECT count(*) FROM escrow_codes WHERE escrow_id = $1 AND created >= $2",
                              Params().text(id).int64(to_ms(since)));
    if (!rs) return rs.error();
    return static_cast<int>(rs->int64(0, 0));
}

Result<void> PgEscrowStore::add_code(const std::string& id, const std::string& code_hash, bool strong, EscrowTime now,
                                     EscrowTime expires, StoredMessage msg, EscrowAuditEntry audit,
                                     const AuditChain& chain) {
    if (id.empty() || code_hash.empty() || msg.envelope.id.empty()) return common::Errc::invalid_argument;
    audit.escrow_id = id;
    Appended appended;
    auto r = run_in_writer([&](Conn& c) -> Result<void> {
        appended.clear();
        // Locked, so that two nodes sending a code at once leave one live code (the later one).
        auto rec = select_one(c, by_id_locked(), id);
        if (!rec) return rec.error();
        if (auto res = c.exec("UPDATE escrow_codes SET live = false WHERE escrow_id = $1 AND live", Params().text(id));
            !res)
            return res.error();
        if (auto res = c.exec(
                "INSERT INTO escrow_codes (escrow_id, code_hash, created, expires, strong) VALUES ($1, $2, $3, $4, $5)",
                Params().text(id).text(code_hash).int64(to_ms(now)).int64(to_ms(expires)).boolean(strong));
            !res)
            return res.error();
        if (auto res = append_in(c, audit, chain, appended); !res) return res;
        return insert_message(c, msg);
    });
    if (r) committed(appended);
    return r;
}

Result<CodeCheck> PgEscrowStore::check_code(const std::string& id, const std::string& code_hash, EscrowTime now,
                                            const CodeRules& rules, EscrowAuditEntry audit, const AuditChain& chain) {
    Appended appended;
    CodeDecision d;
    {
        std::lock_guard lk(conn_.mu);
        auto& c = conn_.conn;
        auto tx = Tx::begin(c);
        if (!tx) return tx.error();
        // The message's row is locked until COMMIT: checks on two nodes at once count every wrong
        // code (no lost update of the counters) and see each other's lockouts.
        auto rec = select_one(c, by_id_locked(), id);
        if (!rec) return rec.error();
        auto row = c.exec(
            "SELECT id, code_hash, tries, strong FROM escrow_codes WHERE escrow_id = $1 AND live AND expires > $2"
            " ORDER BY id DESC LIMIT 1",
            Params().text(id).int64(to_ms(now)));
        if (!row) return row.error();
        std::optional<LiveCode> code;
        std::int64_t code_id = 0;
        if (row->size() > 0) {
            code_id = row->int64(0, 0);
            code = LiveCode{row->text(0, 1), row->int64(0, 2), row->boolean(0, 3)};
        }
        d = decide_code({rec->failed_logins, rec->locked_until, rec->total_failures, rec->lockouts}, code, code_hash,
                        now, rules);
        if (!d.write) return d.result;
        if (auto r = c.exec(d.use_code ? "UPDATE escrow_codes SET live = false WHERE id = $1"
                                       : "UPDATE escrow_codes SET tries = tries + 1 WHERE id = $1",
                            Params().int64(code_id));
            !r)
            return r.error();
        Params p;
        p.text(id).int64(d.next.failed_logins);
        if (d.next.locked_until) p.int64(to_ms(*d.next.locked_until));
        else p.null();
        p.int64(d.next.total_failures).int64(d.next.lockouts);
        if (auto r = c.exec("UPDATE escrow_messages SET failed_logins = $2, locked_until = $3, total_failures = $4,"
                            " lockouts = $5 WHERE id = $1",
                            p);
            !r)
            return r.error();
        if (d.void_short_codes)
            if (auto r = c.exec("UPDATE escrow_codes SET live = false WHERE escrow_id = $1 AND live AND NOT strong",
                                Params().text(id));
                !r)
                return r.error();
        audit.escrow_id = id;
        audit.at = now;
        audit.event = std::string(d.event);
        audit.detail = d.detail;
        if (auto r = append_in(c, std::move(audit), chain, appended); !r) return r.error();
        if (auto r = tx->commit(); !r) return r.error();
    }
    committed(appended);
    return d.result;
}

Result<void> PgEscrowStore::create_session(const EscrowSession& s) {
    if (s.id_hash.empty() || s.escrow_id.empty() || s.csrf.empty()) return common::Errc::invalid_argument;
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec(
        "INSERT INTO escrow_sessions (id_hash, escrow_id, csrf, created, last_seen) VALUES ($1, $2, $3, $4, $5)",
        Params().text(s.id_hash).text(s.escrow_id).text(s.csrf).int64(to_ms(s.created)).int64(to_ms(s.last_seen)));
    if (!r) return r.error();
    return {};
}

Result<EscrowSession> PgEscrowStore::session(const std::string& id_hash) {
    std::lock_guard lk(conn_.mu);
    return select_session(conn_.conn, id_hash);
}

Result<void> PgEscrowStore::touch_session(const std::string& id_hash, EscrowTime now) {
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec("UPDATE escrow_sessions SET last_seen = $2 WHERE id_hash = $1 AND ended_at IS NULL",
                             Params().text(id_hash).int64(to_ms(now)));
    if (!r) return r.error();
    if (r->affected() == 0) return common::Errc::not_found;
    return {};
}

Result<void> PgEscrowStore::end_session(const std::string& id_hash, EscrowTime now) {
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec("UPDATE escrow_sessions SET ended_at = $2 WHERE id_hash = $1 AND ended_at IS NULL",
                             Params().text(id_hash).int64(to_ms(now)));
    if (!r) return r.error();
    return {};
}

Result<void> PgEscrowStore::end_sessions_of(const std::string& id, EscrowTime now) {
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec("UPDATE escrow_sessions SET ended_at = $2 WHERE escrow_id = $1 AND ended_at IS NULL",
                             Params().text(id).int64(to_ms(now)));
    if (!r) return r.error();
    return {};
}

Result<void> PgEscrowStore::append_audit(EscrowAuditEntry e, const AuditChain& chain) {
    Appended appended;
    {
        std::lock_guard lk(conn_.mu);
        auto tx = Tx::begin(conn_.conn);
        if (!tx) return tx.error();
        if (auto r = append_in(conn_.conn, std::move(e), chain, appended); !r) return r;
        if (auto r = tx->commit(); !r) return r;
    }
    committed(appended);
    return {};
}

Result<std::vector<EscrowAuditEntry>> PgEscrowStore::audit(const std::string& id) {
    std::lock_guard lk(conn_.mu);
    auto rs = conn_.conn.exec(
        "SELECT seq, escrow_id, at, event, address, user_agent, detail, prev_hash, hash FROM escrow_audit"
        " WHERE escrow_id = $1 ORDER BY seq",
        Params().text(id));
    if (!rs) return rs.error();
    std::vector<EscrowAuditEntry> out;
    for (int i = 0; i < rs->size(); ++i) {
        EscrowAuditEntry e;
        e.seq = rs->int64(i, 0);
        e.escrow_id = rs->text(i, 1);
        e.at = from_ms(rs->int64(i, 2));
        e.event = rs->text(i, 3);
        e.address = rs->text(i, 4);
        e.user_agent = rs->text(i, 5);
        e.detail = rs->text(i, 6);
        e.prev_hash = rs->text(i, 7);
        e.hash = rs->text(i, 8);
        out.push_back(std::move(e));
    }
    return out;
}

// ---- the key holder's read-only view ----

namespace {

// dsn with default_transaction_read_only=on among its server options, in the dsn's own syntax.
std::string read_only_dsn(const std::string& dsn) {
    if (dsn.rfind("postgresql://", 0) == 0 || dsn.rfind("postgres://", 0) == 0)
        return dsn + (dsn.find('?') == std::string::npos ? "?" : "&") +
               "options=-c%20default_transaction_read_only%3Don";
    return dsn + " options='-c default_transaction_read_only=on'";
}

class PgEscrowReader final : public EscrowReader {
  public:
    explicit PgEscrowReader(Conn c) : c_(std::move(c)) {}
    Result<EscrowRecord> get(const std::string& id) override {
        std::lock_guard lk(mu_);
        auto tx = Tx::begin(c_, "BEGIN READ ONLY");
        if (!tx) return tx.error();
        return select_one(c_, by_id(), id);
    }
    Result<EscrowSession> session(const std::string& id_hash) override {
        std::lock_guard lk(mu_);
        auto tx = Tx::begin(c_, "BEGIN READ ONLY");
        if (!tx) return tx.error();
        return select_session(c_, id_hash);
    }

  private:
    std::mutex mu_;
    Conn c_;
};

}  // namespace

Result<Conn> open_read_only(const std::string& dsn) {
    auto c = Conn::open(read_only_dsn(dsn));
    if (!c) return c.error();
    // The option, not a SET: a reconnect (pg.cpp) starts a new session from the same DSN. An
    // options= already in dsn is overridden by ours for this connection (the reader only reads).
    auto ro = c->exec("SHOW default_transaction_read_only");
    if (!ro) return ro.error();
    if (ro->size() != 1 || ro->text(0, 0) != "on") {
        spdlog::error("store: the escrow reader's PostgreSQL connection is not read-only");
        return common::Errc::storage_error;
    }
    return c;
}

Result<std::unique_ptr<EscrowReader>> open_escrow_reader(const std::string& dsn) {
    auto c = open_read_only(dsn);
    if (!c) return c.error();
    auto v = schema_version(*c);
    if (!v) return v.error();
    if (*v != latest_schema_version()) {
        spdlog::error(
            "store: the PostgreSQL schema is version {}, the escrow reader needs {} (serve migrates it first)", *v,
            latest_schema_version());
        return common::Errc::unsupported;
    }
    return std::unique_ptr<EscrowReader>(new PgEscrowReader(std::move(*c)));
}

}  // namespace mailward::store::postgres
