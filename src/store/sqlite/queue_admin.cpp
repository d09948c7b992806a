// The administrator's side of the SQLite queue (`mailward queue list|hold|release|flush`): the
// listing with every pending recipient, the hold flag (schema version 8) and flush. Reads and writes
// run on the shared connection under its mutex, writes in their own BEGIN IMMEDIATE transactions.
// Hold is message-wide, as Postfix's hold queue is (postsuper -h / -H, postqueue -f).
#include <spdlog/spdlog.h>

#include "store/sqlite/internal.hpp"

namespace mailward::store::sqlite {
namespace {

// The message's hold flag and its number of pending recipients; nullopt when there is no message.
struct HoldFacts {
    bool held = false;
    std::int64_t pending = 0;
};
Result<std::optional<HoldFacts>> hold_facts(Db& db, const std::string& id) {
    auto st = db.prepare(
        "SELECT m.held, (SELECT count(*) FROM recipients r WHERE r.message_id = m.id"
        " AND r.state IN ('queued', 'awaiting_escrow')) FROM messages m WHERE m.id = ?1");
    if (!st) return st.error();
    st->bind(1, id);
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) return std::optional<HoldFacts>();
    return std::optional<HoldFacts>(HoldFacts{st->int64(0) != 0, st->int64(1)});
}

}  // namespace

Result<std::vector<QueueListing>> SqliteQueueStore::listing(TimePoint now) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, false);  // one snapshot for the whole listing
    if (!tx) return tx.error();
    std::vector<std::pair<std::string, bool>> ids;  // id, leased
    {
        auto st = conn_.db.prepare(
            "SELECT m.id, (m.lease_until IS NOT NULL AND m.lease_until >= ?1)"
            " FROM recipients r JOIN messages m ON m.id = r.message_id"
            " WHERE r.state IN ('queued', 'awaiting_escrow') GROUP BY m.id ORDER BY m.received_at, m.id");
        if (!st) return st.error();
        st->bind(1, to_ms(now));
        for (;;) {
            auto row = st->step();
            if (!row) return row.error();
            if (!*row) break;
            ids.emplace_back(st->text(0), st->int64(1) != 0);
        }
    }
    std::vector<QueueListing> out;
    out.reserve(ids.size());
    for (auto& [id, leased] : ids) {
        auto env = read_envelope(conn_.db, id);
        if (!env) return env.error();
        std::erase_if(env->recipients, [](const Recipient& r) {
            return r.state != RcptState::queued && r.state != RcptState::awaiting_escrow;
        });
        out.push_back(QueueListing{std::move(*env), leased});
    }
    return out;
}

Result<void> SqliteQueueStore::hold(const std::string& id) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, true);
    if (!tx) return tx.error();
    auto facts = hold_facts(conn_.db, id);
    if (!facts) return facts.error();
    if (!*facts) return common::Errc::not_found;
    if ((*facts)->pending == 0) return common::Errc::invalid_argument;  // delivered, failed or deleted
    auto st = conn_.db.prepare("UPDATE messages SET held = 1 WHERE id = ?1");
    if (!st) return st.error();
    st->bind(1, id);
    if (auto r = st->run(); !r) return r;
    if (auto r = tx->commit(); !r) return r;
    spdlog::info("store: {} put on hold", id);
    return {};
}

Result<void> SqliteQueueStore::release(const std::string& id) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, true);
    if (!tx) return tx.error();
    auto facts = hold_facts(conn_.db, id);
    if (!facts) return facts.error();
    if (!*facts) return common::Errc::not_found;
    if (!(*facts)->held) return common::Errc::invalid_argument;
    {
        auto st = conn_.db.prepare("UPDATE messages SET held = 0 WHERE id = ?1");
        if (!st) return st.error();
        st->bind(1, id);
        if (auto r = st->run(); !r) return r;
    }
    {
        auto st =
            conn_.db.prepare("UPDATE recipients SET next_attempt = ?2 WHERE message_id = ?1 AND state = 'queued'");
        if (!st) return st.error();
        st->bind(1, id).bind(2, to_ms(Clock::now()));
        if (auto r = st->run(); !r) return r;
    }
    if (auto r = tx->commit(); !r) return r;
    spdlog::info("store: {} released from hold", id);
    return {};
}

Result<std::size_t> SqliteQueueStore::flush(TimePoint now) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, true);
    if (!tx) return tx.error();
    std::size_t messages = 0;
    {
        auto st = conn_.db.prepare(
            "SELECT count(DISTINCT r.message_id) FROM recipients r JOIN messages m ON m.id = r.message_id"
            " WHERE r.state = 'queued' AND r.next_attempt > ?1 AND m.held = 0");
        if (!st) return st.error();
        st->bind(1, to_ms(now));
        auto row = st->step();
        if (!row) return row.error();
        messages = *row ? static_cast<std::size_t>(st->int64(0)) : 0;
    }
    {
        auto st = conn_.db.prepare(
            "UPDATE recipients SET next_attempt = ?1 WHERE state = 'queued' AND next_attempt > ?1"
            " AND message_id IN (SELECT id FROM messages WHERE held = 0)");
        if (!st) return st.error();
        st->bind(1, to_ms(now));
        if (auto r = st->run(); !r) return r.error();
    }
    if (auto r = tx->commit(); !r) return r.error();
    return messages;
}

}  // namespace mailward::store::sqlite
