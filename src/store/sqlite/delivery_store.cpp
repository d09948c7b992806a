// The scheduler's side of the SQLite queue: leasing due messages, recording attempt outcomes,
// the next due time, and releasing a node's leases after a restart. Leases make delivery
// at-least-once: a lease that is not completed expires and the message is leased again.
#include <spdlog/spdlog.h>

#include <memory>

#include "common/wait_callback.hpp"
#include "store/sqlite/internal.hpp"

namespace mailward::store::sqlite {

namespace {

// The SQL of lease_due, inside the caller's transaction (or savepoint).
Result<void> lease_in(Db& db, TimePoint now, std::size_t limit, const std::string& owner,
                      std::chrono::milliseconds lease_for, std::vector<Envelope>& out) {
    std::vector<std::string> ids;
    {
        // Walks recipients_due (state, next_attempt): the earliest due recipients first. A message
        // on hold (`queue hold`) is never leased.
        auto st = db.prepare(std::string(kSelectMessageIds) +
                             " WHERE r.state = 'queued' AND r.next_attempt <= ?1 AND m.held = 0"
                             " AND (m.lease_until IS NULL OR m.lease_until < ?1) LIMIT ?2");
        if (!st) return st.error();
        st->bind(1, to_ms(now)).bind(2, static_cast<std::int64_t>(limit));
        auto r = read_ids(*st);
        if (!r) return r.error();
        ids = std::move(*r);
    }
    out.reserve(ids.size());
    for (const auto& id : ids) {
        auto st = db.prepare("UPDATE messages SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1");
        if (!st) return st.error();
        st->bind(1, id).bind(2, owner).bind(3, to_ms(now + lease_for));
        if (auto r = st->run(); !r) return r.error();
        auto env = read_envelope(db, id);
        if (!env) return env.error();
        out.push_back(std::move(*env));
    }
    return {};
}

}  // namespace

// Runs on the writer thread, in its next batch: leasing is a write, and one writer means no
// contention for SQLite's write lock with the group commit of submissions.
Result<std::vector<Envelope>> SqliteQueueStore::lease_due(TimePoint now, std::size_t limit, const std::string& owner,
                                                          std::chrono::milliseconds lease_for) {
    auto leased = std::make_shared<std::vector<Envelope>>();
    auto submit = [&](auto done) {
        writer_.submit_job(
            [leased, now, limit, owner, lease_for](Db& db) {
                leased->clear();
                return lease_in(db, now, limit, owner, lease_for, *leased);
            },
            std::move(done));
    };
    if (auto r = common::wait_callback<Result<void>>(submit); !r) return r.error();
    return std::move(*leased);
}

namespace {

// The SQL of complete_attempt, inside the caller's transaction (or savepoint).
Result<void> apply_attempt(Db& db, const std::string& id, const std::string& owner,
                           const std::vector<QueueStore::RecipientUpdate>& updates) {
    for (const auto& u : updates) {
        auto st = db.prepare(
            "UPDATE recipients SET state = ?3, attempts = ?4, next_attempt = ?5, last_error = ?6,"
            " delay_warned = ?7 WHERE message_id = ?1 AND idx = ?2 AND state = 'queued'");
        if (!st) return st.error();
        st->bind(1, id)
            .bind(2, static_cast<std::int64_t>(u.index))
            .bind(3, to_string(u.state))
            .bind(4, static_cast<std::int64_t>(u.attempts))
            .bind(5, to_ms(u.next_attempt))
            .bind(6, u.last_error)
            .bind(7, std::int64_t{u.delay_warned ? 1 : 0});
        if (auto r = st->run(); !r) return r;
    }
    {
        auto st =
            db.prepare("UPDATE messages SET lease_owner = NULL, lease_until = NULL WHERE id = ?1 AND lease_owner = ?2");
        if (!st) return st.error();
        st->bind(1, id).bind(2, owner);
        if (auto r = st->run(); !r) return r;
        if (db.changes() == 0) {
            spdlog::warn("store: lease on {} was no longer held by {} when its attempt completed", id, owner);
        }
    }
    {
        // A message with nothing left to do no longer needs its body (the envelope stays as history).
        auto st = db.prepare(
            "DELETE FROM bodies WHERE message_id = ?1 AND NOT EXISTS (SELECT 1 FROM recipients"
            " WHERE message_id = ?1 AND state IN ('queued', 'awaiting_escrow'))");
        if (!st) return st.error();
        st->bind(1, id);
        if (auto r = st->run(); !r) return r;
    }
    return {};
}

}  // namespace

Result<void> SqliteQueueStore::complete_attempt(const std::string& id, const std::string& owner,
                                                const std::vector<RecipientUpdate>& updates) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, true);
    if (!tx) return tx.error();
    if (auto r = apply_attempt(conn_.db, id, owner, updates); !r) return r;
    return tx->commit();
}

void SqliteQueueStore::complete_attempt_async(std::string id, std::string owner, std::vector<RecipientUpdate> updates,
                                              SubmitDone done) {
    writer_.submit_job([id = std::move(id), owner = std::move(owner),
                        updates = std::move(updates)](Db& db) { return apply_attempt(db, id, owner, updates); },
                       std::move(done));
}

Result<std::optional<TimePoint>> SqliteQueueStore::next_due() {
    std::lock_guard lk(conn_.mu);
    // Walks recipients_due in next_attempt order to the first recipient of a message not on hold.
    auto st = conn_.db.prepare(
        "SELECT r.next_attempt FROM recipients r JOIN messages m ON m.id = r.message_id"
        " WHERE r.state = 'queued' AND m.held = 0 ORDER BY r.next_attempt LIMIT 1");
    if (!st) return st.error();
    auto row = st->step();
    if (!row) return row.error();
    if (!*row || st->is_null(0)) return std::optional<TimePoint>();
    return std::optional<TimePoint>(from_ms(st->int64(0)));
}

Result<std::size_t> SqliteQueueStore::release_leases(const std::string& owner) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare("UPDATE messages SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?1");
    if (!st) return st.error();
    st->bind(1, owner);
    if (auto r = st->run(); !r) return r.error();
    return static_cast<std::size_t>(conn_.db.changes());
}

Result<std::size_t> SqliteQueueStore::renew_leases(const std::string& owner, const std::vector<std::string>& ids,
                                                   TimePoint until) {
    if (ids.empty()) return std::size_t{0};
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, true);
    if (!tx) return tx.error();
    auto st = conn_.db.prepare("UPDATE messages SET lease_until = ?3 WHERE id = ?1 AND lease_owner = ?2");
    if (!st) return st.error();
    std::size_t n = 0;
    for (const auto& id : ids) {
        st->reset();
        st->bind(1, id).bind(2, owner).bind(3, to_ms(until));
        if (auto r = st->run(); !r) return r.error();
        n += static_cast<std::size_t>(conn_.db.changes());
    }
    if (auto r = tx->commit(); !r) return r.error();
    return n;
}

}  // namespace mailward::store::sqlite
