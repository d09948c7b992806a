// The learned TLS policy over SQLite: the ratchet (raise only; an administrator forgets) and the
// append-only incident history. Reads and writes on the shared connection under its mutex.
#include "store/sqlite/internal.hpp"

namespace mailward::store::sqlite {
namespace {

LearnedPolicy row_policy(const Stmt& st) {
    LearnedPolicy p;
    p.domain = st.text(0);
    p.level = st.text(1);
    p.first_seen = from_ms(st.int64(2));
    p.last_confirmed = from_ms(st.int64(3));
    p.evidence = st.text(4);
    return p;
}

constexpr const char* kSelect = "SELECT domain, level, first_seen, last_confirmed, evidence FROM learned_policy";

}  // namespace

Result<std::optional<LearnedPolicy>> SqlitePolicyStore::get(const std::string& domain) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(std::string(kSelect) + " WHERE domain = ?1");
    if (!st) return st.error();
    st->bind(1, domain);
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) return std::optional<LearnedPolicy>();
    return std::optional<LearnedPolicy>(row_policy(*st));
}

Result<std::vector<LearnedPolicy>> SqlitePolicyStore::list() {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(std::string(kSelect) + " ORDER BY domain");
    if (!st) return st.error();
    std::vector<LearnedPolicy> out;
    for (;;) {
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) break;
        out.push_back(row_policy(*st));
    }
    return out;
}

Result<bool> SqlitePolicyStore::raise(const std::string& domain, const std::string& level, int rank,
                                      const std::string& evidence, TimePoint now) {
    const auto fail = [](error_code ec) { return Result<bool>(boost::system::in_place_error, ec); };
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, true);
    if (!tx) return fail(tx.error());
    bool changed = false;
    {
        // Insert, or raise when stricter; a weaker or equal level only confirms (never lowers).
        auto st = conn_.db.prepare(
            "INSERT INTO learned_policy (domain, level, rank, first_seen, last_confirmed, evidence)"
            " VALUES (?1, ?2, ?3, ?4, ?4, ?5)"
            " ON CONFLICT (domain) DO UPDATE SET"
            " level = CASE WHEN excluded.rank > rank THEN excluded.level ELSE level END,"
            " evidence = CASE WHEN excluded.rank > rank THEN excluded.evidence ELSE evidence END,"
            " rank = max(rank, excluded.rank), last_confirmed = excluded.last_confirmed");
        if (!st) return fail(st.error());
        auto before = conn_.db.prepare("SELECT rank FROM learned_policy WHERE domain = ?1");
        if (!before) return fail(before.error());
        before->bind(1, domain);
        auto row = before->step();
        if (!row) return fail(row.error());
        const std::int64_t old_rank = *row ? before->int64(0) : -1;
        st->bind(1, domain).bind(2, level).bind(3, static_cast<std::int64_t>(rank)).bind(4, to_ms(now)).bind(5, evidence);
        if (auto r = st->run(); !r) return fail(r.error());
        changed = rank > old_rank;
    }
    if (auto r = tx->commit(); !r) return fail(r.error());
    return changed;
}

Result<void> SqlitePolicyStore::forget(const std::string& domain) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare("DELETE FROM learned_policy WHERE domain = ?1");
    if (!st) return st.error();
    st->bind(1, domain);
    if (auto r = st->run(); !r) return r;
    if (conn_.db.changes() == 0) return common::Errc::not_found;
    return {};
}

Result<void> SqlitePolicyStore::add_incident(const PolicyIncident& i) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare("INSERT INTO policy_incidents (domain, at, kind, detail) VALUES (?1, ?2, ?3, ?4)");
    if (!st) return st.error();
    st->bind(1, i.domain).bind(2, to_ms(i.at)).bind(3, i.kind).bind(4, i.detail);
    return st->run();
}

Result<std::vector<PolicyIncident>> SqlitePolicyStore::incidents(const std::string& domain) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare("SELECT domain, at, kind, detail FROM policy_incidents WHERE domain = ?1 ORDER BY id");
    if (!st) return st.error();
    st->bind(1, domain);
    std::vector<PolicyIncident> out;
    for (;;) {
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) break;
        out.push_back({st->text(0), from_ms(st->int64(1)), st->text(2), st->text(3)});
    }
    return out;
}

}  // namespace mailward::store::sqlite
