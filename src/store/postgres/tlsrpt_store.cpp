// TLS-RPT (RFC 8460) counts per UTC day over PostgreSQL (schema version 5, migrations.cpp): an
// upsert adds the count to the row with the same key, so the nodes sharing the database sum; a
// claim row per (day, domain) makes the day's report go out once, whichever node asks first.
#include "store/postgres/internal.hpp"

namespace mailward::store::postgres {
namespace {
Result<bool> fail(error_code ec) { return Result<bool>(boost::system::in_place_error, ec); }
}  // namespace

Result<void> PgPolicyStore::add_tlsrpt(const std::vector<TlsRptCount>& rows) {
    for (const auto& c : rows)
        if (!valid_tlsrpt(c)) return common::Errc::invalid_argument;
    if (rows.empty()) return {};
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.conn);
    if (!tx) return tx.error();
    for (const auto& c : rows) {
        auto r = conn_.conn.exec(
            "INSERT INTO tlsrpt_counts (day, policy_domain, policy_type, policy_strings, mx_hosts, result_type,"
            " sending_ip, receiving_mx, receiving_ip, count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (day, policy_domain, policy_type, policy_strings, mx_hosts, result_type, sending_ip,"
            " receiving_mx, receiving_ip) DO UPDATE SET count = tlsrpt_counts.count + excluded.count",
            Params()
                .text(c.day)
                .text(c.policy_domain)
                .text(c.policy_type)
                .text(c.policy_strings)
                .text(c.mx_hosts)
                .text(c.result_type)
                .text(c.sending_ip)
                .text(c.receiving_mx)
                .text(c.receiving_ip)
                .int64(c.count));
        if (!r) return r.error();
    }
    return tx->commit();
}

Result<std::vector<TlsRptCount>> PgPolicyStore::tlsrpt_day(const std::string& day) {
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec(
        "SELECT day, policy_domain, policy_type, policy_strings, mx_hosts, result_type, sending_ip, receiving_mx,"
        " receiving_ip, count FROM tlsrpt_counts WHERE day = $1 ORDER BY policy_domain COLLATE \"C\","
        " policy_type COLLATE \"C\", policy_strings COLLATE \"C\", mx_hosts COLLATE \"C\", result_type COLLATE \"C\","
        " receiving_mx COLLATE \"C\", receiving_ip COLLATE \"C\", sending_ip COLLATE \"C\"",
        Params().text(day));
    if (!r) return r.error();
    std::vector<TlsRptCount> out;
    for (int i = 0; i < r->size(); ++i) {
        out.push_back({r->text(i, 0), r->text(i, 1), r->text(i, 2), r->text(i, 3), r->text(i, 4), r->text(i, 5),
                       r->text(i, 6), r->text(i, 7), r->text(i, 8), r->int64(i, 9)});
    }
    return out;
}

Result<bool> PgPolicyStore::claim_tlsrpt(const std::string& day, const std::string& domain,
                                         const std::string& report_id, TimePoint now) {
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec(
        "INSERT INTO tlsrpt_sent (day, domain, report_id, claimed_at) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (day, domain) DO NOTHING",
        Params().text(day).text(domain).text(report_id).int64(to_ms(now)));
    if (!r) return fail(r.error());
    return r->affected() > 0;
}

Result<std::size_t> PgPolicyStore::purge_tlsrpt(const std::string& before) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.conn);
    if (!tx) return tx.error();
    std::size_t n = 0;
    for (const char* sql : {"DELETE FROM tlsrpt_counts WHERE day < $1", "DELETE FROM tlsrpt_sent WHERE day < $1"}) {
        auto r = conn_.conn.exec(sql, Params().text(before));
        if (!r) return r.error();
        n += static_cast<std::size_t>(r->affected());
    }
    if (auto r = tx->commit(); !r) return r.error();
    return n;
}

}  // namespace mailward::store::postgres
