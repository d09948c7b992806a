// QueueStore over PostgreSQL, the submission and administration side: submit() goes to the
// group-commit writer; reads and the small admin writes (remove, retry_now, hold, release, flush) run
// on the shared connection under its mutex, each in its own short transaction. Reads that span
// several statements (an envelope and its recipients, the listing) use one REPEATABLE READ snapshot.
// Stored enum texts are checked on the way out: an unknown value is reported as corrupt.
#include <spdlog/spdlog.h>

#include "store/postgres/internal.hpp"

namespace mailward::store::postgres {
namespace {

constexpr const char* kSnapshot = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

constexpr const char* kSelectEnvelope =
    "SELECT id, sender, body_type, smtputf8, requiretls, ret, envid, auth_user, client_address, client_helo,"
    " sender_mode, received_at, size, held FROM messages WHERE id = $1";

constexpr const char* kSelectRecipients =
    "SELECT address, orcpt, notify, state, attempts, next_attempt, last_error, delay_warned FROM recipients"
    " WHERE message_id = $1 ORDER BY idx";

Result<bool> message_exists(Conn& c, const std::string& id) {
    auto r = c.exec("SELECT 1 FROM messages WHERE id = $1", Params().text(id));
    if (!r) return Result<bool>(boost::system::in_place_error, r.error());
    return r->size() > 0;
}

}  // namespace

Result<Envelope> read_envelope(Conn& c, const std::string& id) {
    auto m = c.exec(kSelectEnvelope, Params().text(id));
    if (!m) return m.error();
    if (m->size() == 0) return common::Errc::not_found;
    auto body_type = decode_body_type(m->text(0, 2));
    auto ret = decode_ret(m->text(0, 5));
    if (!body_type || !ret) {
        spdlog::error("store: message {} has an unknown body_type or ret", id);
        return common::Errc::corrupt;
    }
    Envelope e;
    e.id = m->text(0, 0);
    e.sender = m->text(0, 1);
    e.body_type = *body_type;
    e.smtputf8 = m->boolean(0, 3);
    e.requiretls = m->boolean(0, 4);
    e.ret = *ret;
    e.envid = m->text(0, 6);
    e.auth_user = m->text(0, 7);
    e.client_address = m->text(0, 8);
    e.client_helo = m->text(0, 9);
    e.sender_mode = m->text(0, 10);
    e.received_at = from_ms(m->int64(0, 11));
    e.size = static_cast<std::uint64_t>(m->int64(0, 12));
    e.held = m->boolean(0, 13);
    auto rs = c.exec(kSelectRecipients, Params().text(id));
    if (!rs) return rs.error();
    for (int i = 0; i < rs->size(); ++i) {
        auto state = decode_state(rs->text(i, 3));
        if (!state) {
            spdlog::error("store: message {} has a recipient in an unknown state", id);
            return common::Errc::corrupt;
        }
        Recipient r;
        r.address = rs->text(i, 0);
        r.orcpt = rs->text(i, 1);
        r.notify = static_cast<unsigned>(rs->int64(i, 2));
        r.state = *state;
        r.attempts = static_cast<int>(rs->int64(i, 4));
        r.next_attempt = from_ms(rs->int64(i, 5));
        r.last_error = rs->text(i, 6);
        r.delay_warned = rs->boolean(i, 7);
        e.recipients.push_back(std::move(r));
    }
    return e;
}

Result<void> insert_message(Conn& c, StoredMessage& msg) {
    auto& e = msg.envelope;
    if (e.received_at == TimePoint{}) e.received_at = Clock::now();
    e.size = msg.body.size();  // "body octets as stored"
    auto m = c.exec(
        "INSERT INTO messages (id, sender, body_type, smtputf8, requiretls, ret, envid, auth_user,"
        " client_address, client_helo, sender_mode, received_at, size)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        Params()
            .text(e.id)
            .text(e.sender)
            .text(encode(e.body_type))
            .boolean(e.smtputf8)
            .boolean(e.requiretls)
            .text(encode(e.ret))
            .text(e.envid)
            .text(e.auth_user)
            .text(e.client_address)
            .text(e.client_helo)
            .text(e.sender_mode)
            .int64(to_ms(e.received_at))
            .int64(static_cast<std::int64_t>(e.size)));
    if (!m) return m.error();
    auto b = c.exec("INSERT INTO bodies (message_id, data) VALUES ($1, $2)", Params().text(e.id).bytea(msg.body));
    if (!b) return b.error();
    for (std::size_t i = 0; i < e.recipients.size(); ++i) {
        const auto& r = e.recipients[i];
        auto rc = c.exec(
            "INSERT INTO recipients (message_id, idx, address, domain, orcpt, notify, state, attempts,"
            " next_attempt, last_error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            Params()
                .text(e.id)
                .int64(static_cast<std::int64_t>(i))
                .text(r.address)
                .text(domain_of(r.address))
                .text(r.orcpt)
                .int64(r.notify)
                .text(to_string(r.state))
                .int64(r.attempts)
                .int64(to_ms(r.next_attempt))
                .text(r.last_error));
        if (!rc) return rc.error();
    }
    return {};
}

void PgQueueStore::submit(StoredMessage msg, SubmitDone done) { writer_.submit(std::move(msg), std::move(done)); }

Result<std::vector<QueueEntry>> PgQueueStore::list() {
    std::lock_guard lk(conn_.mu);
    auto rows = conn_.conn.exec(
        "SELECT m.id, m.sender, m.received_at, m.size,"
        " (SELECT count(*) FROM recipients a WHERE a.message_id = m.id), count(*), min(r.next_attempt)"
        " FROM recipients r JOIN messages m ON m.id = r.message_id"
        " WHERE r.state IN ('queued', 'awaiting_escrow') GROUP BY m.id ORDER BY m.received_at, m.id");
    if (!rows) return rows.error();
    std::vector<QueueEntry> out;
    for (int i = 0; i < rows->size(); ++i) {
        QueueEntry q;
        q.id = rows->text(i, 0);
        q.sender = rows->text(i, 1);
        q.received_at = from_ms(rows->int64(i, 2));
        q.size = static_cast<std::uint64_t>(rows->int64(i, 3));
        q.recipients = static_cast<std::size_t>(rows->int64(i, 4));
        q.pending = static_cast<std::size_t>(rows->int64(i, 5));
        q.next_attempt = from_ms(rows->int64(i, 6));
        out.push_back(std::move(q));
    }
    return out;
}

Result<Envelope> PgQueueStore::envelope(const std::string& id) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.conn, kSnapshot);
    if (!tx) return tx.error();
    return read_envelope(conn_.conn, id);
}

Result<std::string> PgQueueStore::body(const std::string& id) {
    std::lock_guard lk(conn_.mu);
    auto rows = conn_.conn.exec("SELECT data FROM bodies WHERE message_id = $1", Params().text(id), true);
    if (!rows) return rows.error();
    if (rows->size() == 0) return common::Errc::not_found;
    return rows->text(0, 0);
}

Result<void> PgQueueStore::remove(const std::string& id) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.conn);
    if (!tx) return tx.error();
    auto exists = message_exists(conn_.conn, id);
    if (!exists) return exists.error();
    if (!*exists) return common::Errc::not_found;
    if (auto r = conn_.conn.exec(
            "UPDATE recipients SET state = 'deleted' WHERE message_id = $1 AND state IN ('queued', 'awaiting_escrow')",
            Params().text(id));
        !r)
        return r.error();
    if (auto r = conn_.conn.exec("DELETE FROM bodies WHERE message_id = $1", Params().text(id)); !r) return r.error();
    return tx->commit();
}

Result<void> PgQueueStore::retry_now(const std::string& id) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.conn);
    if (!tx) return tx.error();
    auto exists = message_exists(conn_.conn, id);
    if (!exists) return exists.error();
    if (!*exists) return common::Errc::not_found;
    if (auto r = conn_.conn.exec("UPDATE recipients SET next_attempt = $2 WHERE message_id = $1 AND state = 'queued'",
                                 Params().text(id).int64(to_ms(Clock::now())));
        !r)
        return r.error();
    return tx->commit();
}

Result<std::size_t> PgQueueStore::count() {
    std::lock_guard lk(conn_.mu);
    auto rows = conn_.conn.exec(
        "SELECT count(DISTINCT message_id) FROM recipients WHERE state IN ('queued', 'awaiting_escrow')");
    if (!rows) return rows.error();
    return static_cast<std::size_t>(rows->int64(0, 0));
}

Result<std::vector<std::pair<std::string, std::size_t>>> PgQueueStore::pending_by_state() {
    std::lock_guard lk(conn_.mu);
    auto rows = conn_.conn.exec(
        "SELECT state, count(*) FROM recipients WHERE state IN ('queued', 'awaiting_escrow')"
        " GROUP BY state ORDER BY state");
    if (!rows) return rows.error();
    std::vector<std::pair<std::string, std::size_t>> out;
    for (int i = 0; i < rows->size(); ++i)
        out.emplace_back(rows->text(i, 0), static_cast<std::size_t>(rows->int64(i, 1)));
    return out;
}

// ---- administration ----

Result<std::vector<QueueListing>> PgQueueStore::listing(TimePoint now) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.conn, kSnapshot);  // one snapshot for the whole listing
    if (!tx) return tx.error();
    auto ids = conn_.conn.exec(
        "SELECT m.id, bool_or(m.lease_owner IS NOT NULL AND m.lease_until >= $1)"
        " FROM recipients r JOIN messages m ON m.id = r.message_id"
        " WHERE r.state IN ('queued', 'awaiting_escrow') GROUP BY m.id ORDER BY min(m.received_at), m.id",
        Params().int64(to_ms(now)));
    if (!ids) return ids.error();
    std::vector<QueueListing> out;
    out.reserve(static_cast<std::size_t>(ids->size()));
    for (int i = 0; i < ids->size(); ++i) {
        auto env = read_envelope(conn_.conn, ids->text(i, 0));
        if (!env) return env.error();
        std::erase_if(env->recipients, [](const Recipient& r) {
            return r.state != RcptState::queued && r.state != RcptState::awaiting_escrow;
        });
        out.push_back(QueueListing{std::move(*env), ids->boolean(i, 1)});
    }
    return out;
}

namespace {

// The message's hold flag and number of pending recipients, its row locked; nullopt: no message.
struct HoldFacts {
    bool held = false;
    std::int64_t pending = 0;
};
Result<std::optional<HoldFacts>> hold_facts(Conn& c, const std::string& id) {
    auto rows = c.exec(
        "SELECT m.held, (SELECT count(*) FROM recipients r WHERE r.message_id = m.id"
        " AND r.state IN ('queued', 'awaiting_escrow')) FROM messages m WHERE m.id = $1 FOR UPDATE",
        Params().text(id));
    if (!rows) return rows.error();
    if (rows->size() == 0) return std::optional<HoldFacts>();
    return std::optional<HoldFacts>(HoldFacts{rows->boolean(0, 0), rows->int64(0, 1)});
}

}  // namespace

Result<void> PgQueueStore::hold(const std::string& id) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.conn);
    if (!tx) return tx.error();
    auto facts = hold_facts(conn_.conn, id);
    if (!facts) return facts.error();
    if (!*facts) return common::Errc::not_found;
    if ((*facts)->pending == 0) return common::Errc::invalid_argument;  // delivered, failed or deleted
    if (auto r = conn_.conn.exec("UPDATE messages SET held = true WHERE id = $1", Params().text(id)); !r)
        return r.error();
    if (auto r = tx->commit(); !r) return r;
    spdlog::info("store: {} put on hold", id);
    return {};
}

Result<void> PgQueueStore::release(const std::string& id) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.conn);
    if (!tx) return tx.error();
    auto facts = hold_facts(conn_.conn, id);
    if (!facts) return facts.error();
    if (!*facts) return common::Errc::not_found;
    if (!(*facts)->held) return common::Errc::invalid_argument;
    if (auto r = conn_.conn.exec("UPDATE messages SET held = false WHERE id = $1", Params().text(id)); !r)
        return r.error();
    if (auto r = conn_.conn.exec("UPDATE recipients SET next_attempt = $2 WHERE message_id = $1 AND state = 'queued'",
                                 Params().text(id).int64(to_ms(Clock::now())));
        !r)
        return r.error();
    if (auto r = tx->commit(); !r) return r;
    spdlog::info("store: {} released from hold", id);
    return {};
}

Result<std::size_t> PgQueueStore::flush(TimePoint now) {
    std::lock_guard lk(conn_.mu);
    // One statement: the messages it made due are the distinct ids of the rows it changed.
    auto rows = conn_.conn.exec(
        "WITH due AS (UPDATE recipients SET next_attempt = $1 WHERE state = 'queued' AND next_attempt > $1"
        " AND message_id IN (SELECT id FROM messages WHERE NOT held) RETURNING message_id)"
        " SELECT count(DISTINCT message_id) FROM due",
        Params().int64(to_ms(now)));
    if (!rows) return rows.error();
    return static_cast<std::size_t>(rows->int64(0, 0));
}

}  // namespace mailward::store::postgres
