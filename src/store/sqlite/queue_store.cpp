// QueueStore over SQLite: submit() goes to the group-commit writer; reads and the small admin
// writes (remove, retry_now) run on the shared connection under its mutex, writes in their own
// BEGIN IMMEDIATE transactions. Stored enum texts are checked on the way out: an unknown value is
// reported as corrupt, not guessed.
#include <spdlog/spdlog.h>

#include "store/sqlite/internal.hpp"

namespace mailward::store::sqlite {
namespace {

// "Pending" = still needs work from the relay: queued, or held for escrow (docs/design.md).
#define MW_PENDING_STATES "('queued', 'awaiting_escrow')"

Result<bool> message_exists(Db& db, const std::string& id) {
    auto st = db.prepare("SELECT 1 FROM messages WHERE id = ?1");
    if (!st) return Result<bool>(boost::system::in_place_error, st.error());
    st->bind(1, id);
    return st->step();
}

}  // namespace

void SqliteQueueStore::submit(StoredMessage msg, SubmitDone done) { writer_.submit(std::move(msg), std::move(done)); }

Result<std::vector<QueueEntry>> SqliteQueueStore::list() {
    std::lock_guard lk(conn_.mu);
    // Driven by the recipients_due index: finished messages (history) are not scanned.
    auto st = conn_.db.prepare(
        "SELECT m.id, m.sender, m.received_at, m.size,"
        " (SELECT count(*) FROM recipients a WHERE a.message_id = m.id),"
        " count(*), min(r.next_attempt)"
        " FROM recipients r JOIN messages m ON m.id = r.message_id"
        " WHERE r.state IN " MW_PENDING_STATES " GROUP BY m.id ORDER BY m.received_at, m.id");
    if (!st) return st.error();
    std::vector<QueueEntry> out;
    for (;;) {
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) break;
        QueueEntry q;
        q.id = st->text(0);
        q.sender = st->text(1);
        q.received_at = from_ms(st->int64(2));
        q.size = static_cast<std::uint64_t>(st->int64(3));
        q.recipients = static_cast<std::size_t>(st->int64(4));
        q.pending = static_cast<std::size_t>(st->int64(5));
        q.next_attempt = from_ms(st->int64(6));
        out.push_back(std::move(q));
    }
    return out;
}

namespace {

// A messages row, selected with kEnvelopeColumns: the envelope without its recipients.
constexpr const char* kEnvelopeColumns =
    "id, sender, body_type, smtputf8, requiretls, ret, envid, auth_user, client_address, client_helo, sender_mode,"
    " received_at, size, held";

Result<Envelope> read_envelope_row(const Stmt& st, const std::string& id) {
    auto body_type = decode_body_type(st.text(2));
    auto ret = decode_ret(st.text(5));
    if (!body_type || !ret) {
        spdlog::error("store: message {} has an unknown body_type '{}' or ret '{}'", id, st.text(2), st.text(5));
        return common::Errc::corrupt;
    }
    Envelope e;
    e.id = st.text(0);
    e.sender = st.text(1);
    e.body_type = *body_type;
    e.smtputf8 = st.int64(3) != 0;
    e.requiretls = st.int64(4) != 0;
    e.ret = *ret;
    e.envid = st.text(6);
    e.auth_user = st.text(7);
    e.client_address = st.text(8);
    e.client_helo = st.text(9);
    e.sender_mode = st.text(10);
    e.received_at = from_ms(st.int64(11));
    e.size = static_cast<std::uint64_t>(st.int64(12));
    e.held = st.int64(13) != 0;
    return e;
}

// A recipients row, selected with kRecipientColumns (of message id).
constexpr const char* kRecipientColumns =
    "address, orcpt, notify, state, attempts, next_attempt, last_error, delay_warned";

Result<Recipient> read_recipient_row(const Stmt& st, const std::string& id) {
    auto state = decode_state(st.text(3));
    if (!state) {
        spdlog::error("store: message {} has a recipient in unknown state '{}'", id, st.text(3));
        return common::Errc::corrupt;
    }
    Recipient r;
    r.address = st.text(0);
    r.orcpt = st.text(1);
    r.notify = static_cast<unsigned>(st.int64(2));
    r.state = *state;
    r.attempts = static_cast<int>(st.int64(4));
    r.next_attempt = from_ms(st.int64(5));
    r.last_error = st.text(6);
    r.delay_warned = st.int64(7) != 0;
    return r;
}

}  // namespace

Result<std::vector<std::string>> read_ids(Stmt& st) {
    std::vector<std::string> out;
    for (;;) {
        auto row = st.step();
        if (!row) return row.error();
        if (!*row) break;
        out.push_back(st.text(0));
    }
    return out;
}

Result<Envelope> read_envelope(Db& db, const std::string& id) {
    Envelope e;
    {
        auto st = db.prepare(std::string("SELECT ") + kEnvelopeColumns + " FROM messages WHERE id = ?1");
        if (!st) return st.error();
        st->bind(1, id);
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) return common::Errc::not_found;
        auto env = read_envelope_row(*st, id);
        if (!env) return env.error();
        e = std::move(*env);
    }
    auto st =
        db.prepare(std::string("SELECT ") + kRecipientColumns + " FROM recipients WHERE message_id = ?1 ORDER BY idx");
    if (!st) return st.error();
    st->bind(1, id);
    for (;;) {
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) break;
        auto r = read_recipient_row(*st, id);
        if (!r) return r.error();
        e.recipients.push_back(std::move(*r));
    }
    return e;
}

Result<Envelope> SqliteQueueStore::envelope(const std::string& id) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, false);  // one snapshot for the message and its recipients
    if (!tx) return tx.error();
    return read_envelope(conn_.db, id);
}

Result<std::string> SqliteQueueStore::body(const std::string& id) {
    SpoolRef ref;
    {
        std::lock_guard lk(conn_.mu);
        auto st = conn_.db.prepare(
            "SELECT b.data, s.segment, s.start, s.length FROM bodies b"
            " LEFT JOIN spooled_bodies s ON s.message_id = b.message_id WHERE b.message_id = ?1");
        if (!st) return st.error();
        st->bind(1, id);
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) return common::Errc::not_found;
        if (st->is_null(1)) return st->blob(0);
        ref.segment = st->int64(1);
        ref.start = static_cast<std::uint64_t>(st->int64(2));
        ref.length = static_cast<std::uint64_t>(st->int64(3));
    }
    // Read outside the connection's lock. The body may be deleted meanwhile and its range
    // released (read as zeros): so the row is looked up again afterwards. Its range is released
    // only after the row's deletion has committed, so a row still there means the read was good.
    if (!spool_) return common::Errc::storage_error;
    auto data = spool_->read(ref);
    if (!data) return data;
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare("SELECT 1 FROM spooled_bodies WHERE message_id = ?1 AND segment = ?2 AND start = ?3");
    if (!st) return st.error();
    st->bind(1, id).bind(2, ref.segment).bind(3, static_cast<std::int64_t>(ref.start));
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) return common::Errc::not_found;  // deleted while it was being read
    return data;
}

Result<void> SqliteQueueStore::remove(const std::string& id) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, true);
    if (!tx) return tx.error();
    auto exists = message_exists(conn_.db, id);
    if (!exists) return exists.error();
    if (!*exists) return common::Errc::not_found;
    {
        auto st = conn_.db.prepare(
            "UPDATE recipients SET state = 'deleted'"
            " WHERE message_id = ?1 AND state IN " MW_PENDING_STATES);
        if (!st) return st.error();
        st->bind(1, id);
        if (auto r = st->run(); !r) return r;
    }
    {
        auto st = conn_.db.prepare("DELETE FROM bodies WHERE message_id = ?1");
        if (!st) return st.error();
        st->bind(1, id);
        if (auto r = st->run(); !r) return r;
    }
    return tx->commit();
}

Result<void> SqliteQueueStore::retry_now(const std::string& id) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, true);
    if (!tx) return tx.error();
    auto exists = message_exists(conn_.db, id);
    if (!exists) return exists.error();
    if (!*exists) return common::Errc::not_found;
    {
        auto st =
            conn_.db.prepare("UPDATE recipients SET next_attempt = ?2 WHERE message_id = ?1 AND state = 'queued'");
        if (!st) return st.error();
        st->bind(1, id).bind(2, to_ms(Clock::now()));
        if (auto r = st->run(); !r) return r;
    }
    return tx->commit();
}

Result<std::size_t> SqliteQueueStore::count() {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare("SELECT count(DISTINCT message_id) FROM recipients WHERE state IN " MW_PENDING_STATES);
    if (!st) return st.error();
    auto row = st->step();
    if (!row) return row.error();
    return static_cast<std::size_t>(*row ? st->int64(0) : 0);
}

Result<std::vector<std::pair<std::string, std::size_t>>> SqliteQueueStore::pending_by_state() {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare("SELECT state, count(*) FROM recipients WHERE state IN " MW_PENDING_STATES
                               " GROUP BY state ORDER BY state");
    if (!st) return st.error();
    std::vector<std::pair<std::string, std::size_t>> out;
    for (;;) {
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) break;
        out.emplace_back(st->text(0), static_cast<std::size_t>(st->int64(1)));
    }
    return out;
}

}  // namespace mailward::store::sqlite
