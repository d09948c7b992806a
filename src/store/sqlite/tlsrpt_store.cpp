// TLS-RPT (RFC 8460) counts per UTC day over SQLite (schema version 10, migrations.cpp): an upsert
// adds the count to the row with the same key, so several nodes and calls sum; a claim row per
// (day, domain) makes the day's report go out once (INSERT ... ON CONFLICT DO NOTHING).
#include "store/sqlite/internal.hpp"

namespace mailward::store::sqlite {
namespace {
Result<bool> fail(error_code ec) { return Result<bool>(boost::system::in_place_error, ec); }
}  // namespace

Result<void> SqlitePolicyStore::add_tlsrpt(const std::vector<TlsRptCount>& rows) {
    for (const auto& c : rows)
        if (!valid_tlsrpt(c)) return common::Errc::invalid_argument;
    if (rows.empty()) return {};
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, true);
    if (!tx) return tx.error();
    for (const auto& c : rows) {
        auto st = conn_.db.prepare(
            "INSERT INTO tlsrpt_counts (day, policy_domain, policy_type, policy_strings, mx_hosts, result_type,"
            " sending_ip, receiving_mx, receiving_ip, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            " ON CONFLICT (day, policy_domain, policy_type, policy_strings, mx_hosts, result_type, sending_ip,"
            " receiving_mx, receiving_ip) DO UPDATE SET count = tlsrpt_counts.count + excluded.count");
        if (!st) return st.error();
        st->bind(1, c.day)
            .bind(2, c.policy_domain)
            .bind(3, c.policy_type)
            .bind(4, c.policy_strings)
            .bind(5, c.mx_hosts)
            .bind(6, c.result_type)
            .bind(7, c.sending_ip)
            .bind(8, c.receiving_mx)
            .bind(9, c.receiving_ip)
            .bind(10, c.count);
        if (auto r = st->run(); !r) return r.error();
    }
    return tx->commit();
}

Result<std::vector<TlsRptCount>> SqlitePolicyStore::tlsrpt_day(const std::string& day) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(
        "SELECT day, policy_domain, policy_type, policy_strings, mx_hosts, result_type, sending_ip, receiving_mx,"
        " receiving_ip, count FROM tlsrpt_counts WHERE day = ?1 ORDER BY policy_domain, policy_type,"
        " policy_strings, mx_hosts, result_type, receiving_mx, receiving_ip, sending_ip");
    if (!st) return st.error();
    st->bind(1, day);
    std::vector<TlsRptCount> out;
    for (;;) {
        auto r = st->step();
        if (!r) return r.error();
        if (!*r) break;
        out.push_back({st->text(0), st->text(1), st->text(2), st->text(3), st->text(4), st->text(5), st->text(6),
                       st->text(7), st->text(8), st->int64(9)});
    }
    return out;
}

Result<bool> SqlitePolicyStore::claim_tlsrpt(const std::string& day, const std::string& domain,
                                             const std::string& report_id, TimePoint now) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(
        "INSERT INTO tlsrpt_sent (day, domain, report_id, claimed_at) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (day, domain) DO NOTHING");
    if (!st) return fail(st.error());
    st->bind(1, day).bind(2, domain).bind(3, report_id).bind(4, to_ms(now));
    if (auto r = st->run(); !r) return fail(r.error());
    return conn_.db.changes() > 0;
}

Result<std::size_t> SqlitePolicyStore::purge_tlsrpt(const std::string& before) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, true);
    if (!tx) return tx.error();
    std::size_t n = 0;
    for (const char* sql : {"DELETE FROM tlsrpt_counts WHERE day < ?1", "DELETE FROM tlsrpt_sent WHERE day < ?1"}) {
        auto st = conn_.db.prepare(sql);
        if (!st) return st.error();
        st->bind(1, before);
        if (auto r = st->run(); !r) return r.error();
        n += static_cast<std::size_t>(conn_.db.changes());
    }
    if (auto r = tx->commit(); !r) return r.error();
    return n;
}

}  // namespace mailward::store::sqlite
