// The scheduler's side of the PostgreSQL queue, shared by several nodes. lease_due claims work in
// one short transaction: SELECT ... FOR UPDATE SKIP LOCKED picks due, unheld messages without a live
// lease (a row another node is claiming right now is skipped, not waited for), and the same
// statement sets lease_owner, lease_until and lease_generation + 1. An expired lease is taken over
// like a free one. complete_attempt applies an outcome only if the message still carries the lease
// this store object took (owner AND generation): a stale node gets PgErrc::lease_lost and changes
// nothing. An outcome the database could not take (a failover) is written again while the lease lasts.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>

#include "store/postgres/internal.hpp"

namespace mailward::store::postgres {
namespace {

// The SQL of complete_attempt, inside the caller's transaction (or the writer's savepoint).
Result<void> apply_attempt(Conn& c, const std::string& id, const std::string& owner, std::int64_t generation,
                           const std::vector<QueueStore::RecipientUpdate>& updates) {
    // Ends the lease, conditionally: locks the row, so a concurrent takeover waits for this
    // transaction (and then finds the lease free) or has already bumped the generation (and this
    // UPDATE matches nothing).
    auto lease = c.exec(
        "UPDATE messages SET lease_owner = NULL, lease_until = NULL"
        " WHERE id = $1 AND lease_owner = $2 AND lease_generation = $3",
        Params().text(id).text(owner).int64(generation));
    if (!lease) return lease.error();
    if (lease->affected() == 0) {
        auto exists = c.exec("SELECT lease_owner, lease_generation FROM messages WHERE id = $1", Params().text(id));
        if (!exists) return exists.error();
        if (exists->size() == 0) return common::Errc::not_found;
        spdlog::warn("store: outcome of {} by {} (lease generation {}) refused: the lease is now {}'s, generation {}",
                     id, owner, generation, exists->is_null(0, 0) ? std::string("nobody") : exists->text(0, 0),
                     exists->int64(0, 1));
        return PgErrc::lease_lost;
    }
    for (const auto& u : updates) {
        auto r = c.exec(
            "UPDATE recipients SET state = $3, attempts = $4, next_attempt = $5, last_error = $6,"
            " delay_warned = $7 WHERE message_id = $1 AND idx = $2 AND state = 'queued'",
            Params()
                .text(id)
                .int64(static_cast<std::int64_t>(u.index))
                .text(to_string(u.state))
                .int64(u.attempts)
                .int64(to_ms(u.next_attempt))
                .text(u.last_error)
                .boolean(u.delay_warned));
        if (!r) return r.error();
    }
    // A message with nothing left to do no longer needs its body (the envelope stays as history).
    auto b = c.exec(
        "DELETE FROM bodies WHERE message_id = $1 AND NOT EXISTS (SELECT 1 FROM recipients"
        " WHERE message_id = $1 AND state IN ('queued', 'awaiting_escrow'))",
        Params().text(id));
    if (!b) return b.error();
    return {};
}

// A PostgreSQL array literal of values ("{"a","b"}"), each quoted, for one $n parameter.
std::string array_literal(const std::vector<std::string>& values) {
    std::string out = "{";
    for (const auto& v : values) {
        if (out.size() > 1) out += ',';
        out += '"';
        for (char ch : v) {
            if (ch == '"' || ch == '\\') out += '\\';
            out += ch;
        }
        out += '"';
    }
    return out + "}";
}

}  // namespace

Result<std::vector<Envelope>> PgQueueStore::lease_due(TimePoint now, std::size_t limit, const std::string& owner,
                                                      std::chrono::milliseconds lease_for) {
    std::vector<Envelope> out;
    std::vector<std::pair<std::string, std::int64_t>> taken;
    {
        std::lock_guard lk(conn_.mu);
        auto tx = Tx::begin(conn_.conn);
        if (!tx) return tx.error();
        // Two statements. The first picks candidates and locks them (SKIP LOCKED: a message another
        // node is claiming or completing right now is skipped, not waited for). Under READ COMMITTED
        // a row updated by a transaction that committed after the statement's snapshot is
        // re-checked once locked, but only against messages' own columns: the recipients subquery
        // keeps the old snapshot, so a message another node completed meanwhile (lease released,
        // recipients delivered) would still look due. The second statement runs with a new snapshot
        // while this transaction holds the row locks, and every completion locks the message's row
        // before it changes recipients: it sees every finished attempt and takes only what is still
        // due and free.
        auto candidates = conn_.conn.exec(
            "SELECT m.id FROM messages m"
            " WHERE m.id IN (SELECT r.message_id FROM recipients r WHERE r.state = 'queued' AND r.next_attempt <= $1)"
            " AND NOT m.held AND (m.lease_owner IS NULL OR m.lease_until < $1)"
            " ORDER BY m.received_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            Params().int64(to_ms(now)).int64(static_cast<std::int64_t>(limit)));
        if (!candidates) return candidates.error();
        if (candidates->size() == 0) return out;
        std::vector<std::string> ids;
        for (int i = 0; i < candidates->size(); ++i) ids.push_back(candidates->text(i, 0));
        auto rows = conn_.conn.exec(
            "WITH taken AS (UPDATE messages m SET lease_owner = $2, lease_until = $3,"
            "  lease_generation = m.lease_generation + 1"
            "  WHERE m.id = ANY($4::text[]) AND NOT m.held AND (m.lease_owner IS NULL OR m.lease_until < $1)"
            "  AND EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND r.state = 'queued'"
            "              AND r.next_attempt <= $1)"
            "  RETURNING m.id, m.lease_generation, m.received_at)"
            " SELECT id, lease_generation FROM taken ORDER BY received_at, id",
            Params().int64(to_ms(now)).text(owner).int64(to_ms(now + lease_for)).text(array_literal(ids)));
        if (!rows) return rows.error();
        for (int i = 0; i < rows->size(); ++i) {
            auto env = read_envelope(conn_.conn, rows->text(i, 0));
            if (!env) return env.error();
            out.push_back(std::move(*env));
            taken.emplace_back(rows->text(i, 0), rows->int64(i, 1));
        }
        if (auto r = tx->commit(); !r) return r.error();
    }
    lease_for_ms_.store(lease_for.count());
    std::lock_guard lk(leases_mu_);
    for (auto& [id, gen] : taken) leases_[id] = {owner, gen};
    return out;
}

std::int64_t PgQueueStore::generation_of(const std::string& id, const std::string& owner) {
    std::lock_guard lk(leases_mu_);
    auto it = leases_.find(id);
    // Not leased through this object (or under another owner name): generation 0 matches no lease.
    if (it == leases_.end() || it->second.first != owner) return 0;
    return it->second.second;
}

void PgQueueStore::forget_lease(const std::string& id) {
    std::lock_guard lk(leases_mu_);
    leases_.erase(id);
}

Result<void> PgQueueStore::complete_attempt(const std::string& id, const std::string& owner,
                                            const std::vector<RecipientUpdate>& updates) {
    const auto generation = generation_of(id, owner);
    Result<void> result;
    {
        std::lock_guard lk(conn_.mu);
        auto tx = Tx::begin(conn_.conn);
        if (!tx) return tx.error();
        result = apply_attempt(conn_.conn, id, owner, generation, updates);
        if (result) result = tx->commit();
    }
    if (result || result.error() == PgErrc::lease_lost) forget_lease(id);
    return result;
}

// An outcome on its way to the database. Its write is conditional on the lease (owner and
// generation), so writing it again is safe: a lease taken over meanwhile refuses it (lease_lost),
// and one whose first COMMIT did take effect (its answer lost with the connection) finds the lease
// already ended and changes nothing (reported as lease_lost).
struct PgQueueStore::Attempt {
    std::string id;
    PgWriter::Job job;
    SubmitDone done;
    std::chrono::steady_clock::time_point retry_until;
    int retries = 0;
};

namespace {
constexpr std::chrono::milliseconds kRecordRetryEvery{500};
constexpr std::chrono::milliseconds kRecordRetryAtMost{60'000};
}  // namespace

void PgQueueStore::complete_attempt_async(std::string id, std::string owner, std::vector<RecipientUpdate> updates,
                                          SubmitDone done) {
    const auto generation = generation_of(id, owner);
    auto a = std::make_shared<Attempt>();
    a->id = id;
    a->job = [id, owner = std::move(owner), generation, updates = std::move(updates)](Conn& c) {
        return apply_attempt(c, id, owner, generation, updates);
    };
    a->done = std::move(done);
    // A database that fails over (a Patroni switch: seconds) must not turn every transfer in flight
    // into a second delivery: an outcome whose write failed (connection lost, no read-write server
    // yet) is written again every 500 ms for up to the lease time (at most a minute), while the
    // node's lease renewals keep the message its own.
    const auto window = std::min(std::chrono::milliseconds(lease_for_ms_.load()), kRecordRetryAtMost);
    a->retry_until = std::chrono::steady_clock::now() + window;
    record_attempt(std::move(a), {});
}

void PgQueueStore::record_attempt(std::shared_ptr<Attempt> a, std::chrono::milliseconds delay) {
    auto job = a->job;
    writer_.submit_job(
        std::move(job),
        [this, a](Result<void> r) {
            if (!r && r.error() == common::Errc::storage_error &&
                std::chrono::steady_clock::now() + kRecordRetryEvery < a->retry_until) {
                if (a->retries++ == 0)
                    spdlog::warn("store: the outcome of {} could not be written; retrying while the lease lasts",
                                 a->id);
                record_attempt(a, kRecordRetryEvery);
                return;
            }
            if (r && a->retries > 0)
                spdlog::info("store: the outcome of {} written after {} retr{}", a->id, a->retries,
                             a->retries == 1 ? "y" : "ies");
            if (r || r.error() == PgErrc::lease_lost) forget_lease(a->id);
            if (a->done) a->done(r);
        },
        delay);
}

Result<std::optional<TimePoint>> PgQueueStore::next_due() {
    std::lock_guard lk(conn_.mu);
    auto rows = conn_.conn.exec(
        "SELECT r.next_attempt FROM recipients r JOIN messages m ON m.id = r.message_id"
        " WHERE r.state = 'queued' AND NOT m.held ORDER BY r.next_attempt LIMIT 1");
    if (!rows) return rows.error();
    if (rows->size() == 0) return std::optional<TimePoint>();
    return std::optional<TimePoint>(from_ms(rows->int64(0, 0)));
}

Result<std::size_t> PgQueueStore::release_leases(const std::string& owner) {
    std::size_t n = 0;
    {
        std::lock_guard lk(conn_.mu);
        auto r = conn_.conn.exec("UPDATE messages SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
                                 Params().text(owner));
        if (!r) return r.error();
        n = static_cast<std::size_t>(r->affected());
    }
    std::lock_guard lk(leases_mu_);
    std::erase_if(leases_, [&](const auto& kv) { return kv.second.first == owner; });
    return n;
}

Result<std::size_t> PgQueueStore::renew_leases(const std::string& owner, const std::vector<std::string>& ids,
                                               TimePoint until) {
    // Only the very leases this object took (owner and generation): one taken over meanwhile by
    // another node, or ended, is not revived.
    std::vector<std::string> lease_ids, generations;
    {
        std::lock_guard lk(leases_mu_);
        for (const auto& id : ids) {
            auto it = leases_.find(id);
            if (it == leases_.end() || it->second.first != owner) continue;
            lease_ids.push_back(id);
            generations.push_back(std::to_string(it->second.second));
        }
    }
    if (lease_ids.empty()) return std::size_t{0};
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec(
        "UPDATE messages m SET lease_until = $2 FROM unnest($3::text[], $4::bigint[]) AS l(id, generation)"
        " WHERE m.id = l.id AND m.lease_owner = $1 AND m.lease_generation = l.generation",
        Params().text(owner).int64(to_ms(until)).text(array_literal(lease_ids)).text(array_literal(generations)));
    if (!r) return r.error();
    return static_cast<std::size_t>(r->affected());
}

}  // namespace mailward::store::postgres
