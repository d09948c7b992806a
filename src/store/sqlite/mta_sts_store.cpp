// The shared MTA-STS policies over SQLite (schema version 9, migrations.cpp): one row per domain,
// replaced only by a later fetch (RFC 8461 section 5.1; policy/mta_sts_store.hpp reads them).
#include "store/sqlite/internal.hpp"

namespace mailward::store::sqlite {
namespace {

Result<bool> fail(error_code ec) { return Result<bool>(boost::system::in_place_error, ec); }

constexpr const char* kSelect = "SELECT domain, id, policy, fetched_at, expires FROM mta_sts_policies";

StoredMtaSts row(const Stmt& st) {
    return {st.text(0), st.text(1), st.text(2), from_ms(st.int64(3)), from_ms(st.int64(4))};
}

}  // namespace

Result<bool> SqlitePolicyStore::put_mta_sts(const StoredMtaSts& p) {
    if (!valid_mta_sts(p)) return fail(common::Errc::invalid_argument);
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(
        "INSERT INTO mta_sts_policies (domain, id, policy, fetched_at, expires) VALUES (?1, ?2, ?3, ?4, ?5)"
        " ON CONFLICT (domain) DO UPDATE SET id = excluded.id, policy = excluded.policy,"
        " fetched_at = excluded.fetched_at, expires = excluded.expires"
        " WHERE excluded.fetched_at > mta_sts_policies.fetched_at");
    if (!st) return fail(st.error());
    st->bind(1, p.domain).bind(2, p.id).bind(3, p.policy).bind(4, to_ms(p.fetched_at)).bind(5, to_ms(p.expires));
    if (auto r = st->run(); !r) return fail(r.error());
    return conn_.db.changes() > 0;
}

Result<std::optional<StoredMtaSts>> SqlitePolicyStore::mta_sts(const std::string& domain) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(std::string(kSelect) + " WHERE domain = ?1");
    if (!st) return st.error();
    st->bind(1, domain);
    auto r = st->step();
    if (!r) return r.error();
    if (!*r) return std::optional<StoredMtaSts>();
    return std::optional<StoredMtaSts>(row(*st));
}

Result<std::vector<StoredMtaSts>> SqlitePolicyStore::mta_sts_all() {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(std::string(kSelect) + " ORDER BY domain");
    if (!st) return st.error();
    std::vector<StoredMtaSts> out;
    for (;;) {
        auto r = st->step();
        if (!r) return r.error();
        if (!*r) break;
        out.push_back(row(*st));
    }
    return out;
}

Result<std::size_t> SqlitePolicyStore::purge_mta_sts(TimePoint now) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare("DELETE FROM mta_sts_policies WHERE expires <= ?1");
    if (!st) return st.error();
    st->bind(1, to_ms(now));
    if (auto r = st->run(); !r) return r.error();
    return static_cast<std::size_t>(conn_.db.changes());
}

}  // namespace mailward::store::sqlite
