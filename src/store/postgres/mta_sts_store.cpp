// The shared MTA-STS policies over PostgreSQL (schema version 4, migrations.cpp): one row per
// domain, replaced only by a later fetch, so two nodes that fetch at once end with the newer
// policy whatever the order of their writes (RFC 8461 section 5.1; policy/mta_sts_store.hpp).
#include "store/postgres/internal.hpp"

namespace mailward::store::postgres {
namespace {

Result<bool> fail(error_code ec) { return Result<bool>(boost::system::in_place_error, ec); }

constexpr const char* kSelect = "SELECT domain, id, policy, fetched_at, expires FROM mta_sts_policies";

StoredMtaSts row(const Rows& r, int i) {
    return {r.text(i, 0), r.text(i, 1), r.text(i, 2), from_ms(r.int64(i, 3)), from_ms(r.int64(i, 4))};
}

}  // namespace

Result<bool> PgPolicyStore::put_mta_sts(const StoredMtaSts& p) {
    if (!valid_mta_sts(p)) return fail(common::Errc::invalid_argument);
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec(
        "INSERT INTO mta_sts_policies (domain, id, policy, fetched_at, expires) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (domain) DO UPDATE SET id = excluded.id, policy = excluded.policy,"
        " fetched_at = excluded.fetched_at, expires = excluded.expires"
        " WHERE excluded.fetched_at > mta_sts_policies.fetched_at",
        Params().text(p.domain).text(p.id).text(p.policy).int64(to_ms(p.fetched_at)).int64(to_ms(p.expires)));
    if (!r) return fail(r.error());
    return r->affected() > 0;
}

Result<std::optional<StoredMtaSts>> PgPolicyStore::mta_sts(const std::string& domain) {
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec((std::string(kSelect) + " WHERE domain = $1").c_str(), Params().text(domain));
    if (!r) return r.error();
    if (r->size() == 0) return std::optional<StoredMtaSts>();
    return std::optional<StoredMtaSts>(row(*r, 0));
}

Result<std::vector<StoredMtaSts>> PgPolicyStore::mta_sts_all() {
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec((std::string(kSelect) + " ORDER BY domain COLLATE \"C\"").c_str());
    if (!r) return r.error();
    std::vector<StoredMtaSts> out;
    for (int i = 0; i < r->size(); ++i) out.push_back(row(*r, i));
    return out;
}

Result<std::size_t> PgPolicyStore::purge_mta_sts(TimePoint now) {
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec("DELETE FROM mta_sts_policies WHERE expires <= $1", Params().int64(to_ms(now)));
    if (!r) return r.error();
    return static_cast<std::size_t>(r->affected());
}

}  // namespace mailward::store::postgres
