// The learned TLS policy over PostgreSQL (schema version 2, see migrations.cpp), shared by every node
// on the database, with the semantics of the SQLite store: the ratchet (raise only; an administrator
// forgets), per-MX evidence, the append-only probe history, incidents and audit, admin overrides
// with optional expiry. Each change is one transaction on the shared connection; a raise or confirm
// holds the domain's learned_policy row lock from its first statement to COMMIT, so the evidence and
// the audit row of one change never interleave with another node's. Inputs are validated first.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>

#include "common/timefmt.hpp"
#include "store/postgres/internal.hpp"

namespace mailward::store::postgres {
namespace {

template <class T>
Result<T> fail(error_code ec) {
    return Result<T>(boost::system::in_place_error, ec);
}

// A read of several statements sees one snapshot.
constexpr const char* kSnapshot = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

bool valid_evidence(const std::vector<MxEvidence>& mx) {
    for (const auto& e : mx)
        if (e.host.empty() || !level_rank(e.level)) return false;
    return true;
}

constexpr const char* kSelectEvidence =
    "SELECT domain, host, address, level, starttls, protocol, cipher, chain_valid, name_matched, spki_sha256,"
    " dane_matched, seen_at FROM policy_evidence";

MxEvidence row_evidence(const Rows& r, int i) {
    MxEvidence e;
    e.host = r.text(i, 1);
    e.address = r.text(i, 2);
    e.level = r.text(i, 3);
    e.starttls = r.boolean(i, 4);
    e.protocol = r.text(i, 5);
    e.cipher = r.text(i, 6);
    e.chain_valid = r.boolean(i, 7);
    e.name_matched = r.boolean(i, 8);
    e.spki_sha256 = r.text(i, 9);
    e.dane_matched = r.boolean(i, 10);
    e.seen_at = from_ms(r.int64(i, 11));
    return e;
}

// Replaces domain's evidence with mx; the caller holds a transaction and the domain's row lock and
// has validated mx. A host/address given twice: the last one wins (as in SQLite).
Result<void> write_evidence(Conn& c, const std::string& domain, const std::vector<MxEvidence>& mx) {
    if (auto r = c.exec("DELETE FROM policy_evidence WHERE domain = $1", Params().text(domain)); !r) return r.error();
    for (const auto& e : mx) {
        auto r = c.exec(
            "INSERT INTO policy_evidence (domain, host, address, level, starttls, protocol, cipher, chain_valid,"
            " name_matched, spki_sha256, dane_matched, seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
            " $12) ON CONFLICT (domain, host, address) DO UPDATE SET level = excluded.level,"
            " starttls = excluded.starttls, protocol = excluded.protocol, cipher = excluded.cipher,"
            " chain_valid = excluded.chain_valid, name_matched = excluded.name_matched,"
            " spki_sha256 = excluded.spki_sha256, dane_matched = excluded.dane_matched, seen_at = excluded.seen_at",
            Params()
                .text(domain)
                .text(e.host)
                .text(e.address)
                .text(e.level)
                .boolean(e.starttls)
                .text(e.protocol)
                .text(e.cipher)
                .boolean(e.chain_valid)
                .boolean(e.name_matched)
                .text(e.spki_sha256)
                .boolean(e.dane_matched)
                .int64(to_ms(e.seen_at)));
        if (!r) return r.error();
    }
    return {};
}

// Appends one audit row inside the caller's transaction.
Result<void> append_audit(Conn& c, TimePoint at, std::string_view who, std::string_view action,
                          const std::string& domain, std::string_view level, const std::string& detail) {
    auto r = c.exec("INSERT INTO policy_audit (at, who, action, domain, level, detail) VALUES ($1, $2, $3, $4, $5, $6)",
                    Params().int64(to_ms(at)).text(who).text(action).text(domain).text(level).text(detail));
    if (!r) return r.error();
    return {};
}

constexpr const char* kSelectPolicy =
    "SELECT lp.domain, lp.level, lp.first_seen, lp.last_confirmed, lp.evidence,"
    " (SELECT max(ph.at) FROM probe_history ph WHERE ph.domain = lp.domain) FROM learned_policy lp";

LearnedPolicy row_policy(const Rows& r, int i) {
    LearnedPolicy p;
    p.domain = r.text(i, 0);
    p.level = r.text(i, 1);
    p.first_seen = from_ms(r.int64(i, 2));
    p.last_confirmed = from_ms(r.int64(i, 3));
    p.evidence = r.text(i, 4);
    if (!r.is_null(i, 5)) p.last_probe = from_ms(r.int64(i, 5));
    return p;
}

constexpr const char* kSelectOverride = "SELECT domain, level, reason, expires, set_at, set_by FROM policy_overrides";

Override row_override(const Rows& r, int i) {
    Override o;
    o.domain = r.text(i, 0);
    o.level = r.text(i, 1);
    o.reason = r.text(i, 2);
    if (!r.is_null(i, 3)) o.expires = from_ms(r.int64(i, 3));
    o.set_at = from_ms(r.int64(i, 4));
    o.set_by = r.text(i, 5);
    return o;
}

}  // namespace

// ---- the learned level ----

Result<std::optional<LearnedPolicy>> PgPolicyStore::get(const std::string& domain) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.conn, kSnapshot);  // the row and its evidence from one snapshot
    if (!tx) return tx.error();
    auto row = conn_.conn.exec((std::string(kSelectPolicy) + " WHERE lp.domain = $1").c_str(), Params().text(domain));
    if (!row) return row.error();
    std::optional<LearnedPolicy> out;
    if (row->size() == 0) return out;
    out = row_policy(*row, 0);
    auto mx = conn_.conn.exec((std::string(kSelectEvidence) + " WHERE domain = $1 ORDER BY host COLLATE \"C\","
                                                              " address COLLATE \"C\"")
                                  .c_str(),
                              Params().text(domain));
    if (!mx) return mx.error();
    for (int i = 0; i < mx->size(); ++i) out->mx.push_back(row_evidence(*mx, i));
    if (auto r = tx->commit(); !r) return r.error();
    return out;
}

Result<std::vector<LearnedPolicy>> PgPolicyStore::list() {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.conn, kSnapshot);
    if (!tx) return tx.error();
    auto rows = conn_.conn.exec((std::string(kSelectPolicy) + " ORDER BY lp.domain COLLATE \"C\"").c_str());
    if (!rows) return rows.error();
    auto mx = conn_.conn.exec(
        (std::string(kSelectEvidence) + " ORDER BY domain COLLATE \"C\", host COLLATE \"C\", address COLLATE \"C\"")
            .c_str());
    if (!mx) return mx.error();
    if (auto r = tx->commit(); !r) return r.error();
    std::vector<LearnedPolicy> out;
    // Both sorted by domain in the same collation: one merge pass.
    int j = 0;
    for (int i = 0; i < rows->size(); ++i) {
        auto p = row_policy(*rows, i);
        while (j < mx->size() && mx->text(j, 0) < p.domain) ++j;  // (an orphan cannot exist: FK)
        for (; j < mx->size() && mx->text(j, 0) == p.domain; ++j) p.mx.push_back(row_evidence(*mx, j));
        out.push_back(std::move(p));
    }
    return out;
}

// Why no interleaving of nodes can lower a level (nor lose a raise):
// - An existing domain is locked first (SELECT ... FOR UPDATE): from then on until COMMIT no other
//   node can change or delete its row. Under READ COMMITTED a locking read returns the newest
//   committed row, not an older snapshot, so the level read is the current one.
// - The raise itself is `UPDATE ... WHERE domain = $1 AND rank < $new`: the comparison is in SQL,
//   evaluated on the locked (newest) row; were the lock ever missing, PostgreSQL re-checks the WHERE
//   of an UPDATE against the newest row version after waiting for a concurrent writer, so a node
//   that read "may" and offers "encrypt" while another raised to "verify" updates nothing.
// - A new domain is INSERT ... ON CONFLICT DO NOTHING: when two nodes learn it at once, one inserts,
//   the other waits for that commit, inserts nothing and goes round again to lock and compare.
// - The schema backs this up: a trigger refuses any UPDATE that lowers rank (learned_policy_never_lowers).
// A same-level offer only sets last_confirmed (WHERE rank = $new); a weaker one changes nothing.
Result<bool> PgPolicyStore::raise(const std::string& domain, const std::string& level,
                                  const std::vector<MxEvidence>& mx, const std::string& report, TimePoint now) {
    const auto rank = level_rank(level);
    if (domain.empty() || !rank || !valid_evidence(mx)) return fail<bool>(common::Errc::invalid_argument);
    std::lock_guard lk(conn_.mu);
    auto& c = conn_.conn;
    auto tx = Tx::begin(c);
    if (!tx) return fail<bool>(tx.error());

    bool changed = false;
    // Twice round at most in practice: insert lost to another node's, then lock its row. A forget
    // in between (the row gone again) makes a third round; more means something is wrong.
    for (int round = 0;; ++round) {
        if (round == 4) {
            spdlog::error("policy: raise of {} kept racing with other nodes; giving up this time", domain);
            return fail<bool>(common::Errc::storage_error);
        }
        auto cur = c.exec("SELECT level, rank FROM learned_policy WHERE domain = $1 FOR UPDATE", Params().text(domain));
        if (!cur) return fail<bool>(cur.error());
        if (cur->size() == 0) {
            auto ins = c.exec(
                "INSERT INTO learned_policy (domain, level, rank, first_seen, last_confirmed, evidence)"
                " VALUES ($1, $2, $3, $4, $4, $5) ON CONFLICT (domain) DO NOTHING RETURNING domain",
                Params().text(domain).text(level).int64(*rank).int64(to_ms(now)).text(report));
            if (!ins) return fail<bool>(ins.error());
            if (ins->size() == 0) continue;  // another node learned it first: lock and compare
            if (auto r = append_audit(c, now, "ratchet", "raise", domain, level, "learned"); !r)
                return fail<bool>(r.error());
            changed = true;
            break;
        }
        const std::string old_level = cur->text(0, 0);
        auto up = c.exec(
            "UPDATE learned_policy SET level = $2, rank = $3, last_confirmed = $4, evidence = $5"
            " WHERE domain = $1 AND rank < $3",
            Params().text(domain).text(level).int64(*rank).int64(to_ms(now)).text(report));
        if (!up) return fail<bool>(up.error());
        if (up->affected() == 1) {
            if (auto r = append_audit(c, now, "ratchet", "raise", domain, level, "raised from " + old_level); !r)
                return fail<bool>(r.error());
            changed = true;
            break;
        }
        auto same = c.exec("UPDATE learned_policy SET last_confirmed = $2 WHERE domain = $1 AND rank = $3",
                           Params().text(domain).int64(to_ms(now)).int64(*rank));
        if (!same) return fail<bool>(same.error());
        if (same->affected() == 0) return false;  // weaker: the ratchet keeps what it knows (rolled back)
        break;
    }
    if (!mx.empty())
        if (auto r = write_evidence(c, domain, mx); !r) return fail<bool>(r.error());
    if (auto r = tx->commit(); !r) return fail<bool>(r.error());
    return changed;
}

// Never touches the level: it only sets last_confirmed (and the evidence), under the row lock the
// UPDATE takes, so it cannot undo a raise committed by another node before or after it.
Result<void> PgPolicyStore::confirm(const std::string& domain, const std::vector<MxEvidence>& mx, TimePoint now) {
    if (!valid_evidence(mx)) return common::Errc::invalid_argument;
    std::lock_guard lk(conn_.mu);
    auto& c = conn_.conn;
    auto tx = Tx::begin(c);
    if (!tx) return tx.error();
    auto up = c.exec("UPDATE learned_policy SET last_confirmed = $2 WHERE domain = $1",
                     Params().text(domain).int64(to_ms(now)));
    if (!up) return up.error();
    if (up->affected() == 0) return common::Errc::not_found;
    if (!mx.empty())
        if (auto r = write_evidence(c, domain, mx); !r) return r;
    return tx->commit();
}

Result<void> PgPolicyStore::forget(const std::string& domain, const std::string& who, TimePoint now) {
    std::lock_guard lk(conn_.mu);
    auto& c = conn_.conn;
    auto tx = Tx::begin(c);
    if (!tx) return tx.error();
    // The evidence goes with the row (ON DELETE CASCADE).
    auto del = c.exec("DELETE FROM learned_policy WHERE domain = $1 RETURNING level", Params().text(domain));
    if (!del) return del.error();
    if (del->size() == 0) return common::Errc::not_found;
    const std::string old_level = del->text(0, 0);
    if (auto r = append_audit(c, now, who, "forget", domain, "", "was " + old_level); !r) return r;
    if (auto r = tx->commit(); !r) return r;
    spdlog::info("policy: {} forgot the learned level of {} (was {})", who, domain, old_level);
    return {};
}

// ---- probe history ----

Result<void> PgPolicyStore::record_probe(const std::string& domain, const std::string& level, const std::string& report,
                                         TimePoint now) {
    if (domain.empty() || !level_rank(level)) return common::Errc::invalid_argument;
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec("INSERT INTO probe_history (domain, at, level, report) VALUES ($1, $2, $3, $4)",
                             Params().text(domain).int64(to_ms(now)).text(level).text(report));
    if (!r) return r.error();
    return {};
}

Result<std::vector<ProbeRecord>> PgPolicyStore::probes(const std::string& domain, std::size_t limit) {
    std::lock_guard lk(conn_.mu);
    const auto cap = static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX));
    auto r = conn_.conn.exec(
        "SELECT id, domain, at, level, report FROM probe_history WHERE domain = $1 ORDER BY id DESC LIMIT $2",
        Params().text(domain).int64(cap));
    if (!r) return r.error();
    std::vector<ProbeRecord> out;
    for (int i = 0; i < r->size(); ++i)
        out.push_back({r->int64(i, 0), r->text(i, 1), from_ms(r->int64(i, 2)), r->text(i, 3), r->text(i, 4)});
    return out;
}

// ---- incidents ----

Result<void> PgPolicyStore::add_incident(const PolicyIncident& i) {
    if (i.domain.empty() || i.kind.empty()) return common::Errc::invalid_argument;
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec(
        "INSERT INTO policy_incidents (domain, at, kind, detail, host, address, raw_evidence)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        Params()
            .text(i.domain)
            .int64(to_ms(i.at))
            .text(i.kind)
            .text(i.detail)
            .text(i.host)
            .text(i.address)
            .text(i.raw_evidence));
    if (!r) return r.error();
    return {};
}

Result<std::vector<PolicyIncident>> PgPolicyStore::incidents(const std::string& domain) {
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec(
        "SELECT id, domain, at, kind, detail, host, address, raw_evidence FROM policy_incidents"
        " WHERE domain = $1 ORDER BY id",
        Params().text(domain));
    if (!r) return r.error();
    std::vector<PolicyIncident> out;
    for (int k = 0; k < r->size(); ++k) {
        PolicyIncident i;
        i.id = r->int64(k, 0);
        i.domain = r->text(k, 1);
        i.at = from_ms(r->int64(k, 2));
        i.kind = r->text(k, 3);
        i.detail = r->text(k, 4);
        i.host = r->text(k, 5);
        i.address = r->text(k, 6);
        i.raw_evidence = r->text(k, 7);
        out.push_back(std::move(i));
    }
    return out;
}

// ---- overrides ----

Result<void> PgPolicyStore::set_override(const std::string& domain, const std::string& level, const std::string& reason,
                                         std::optional<TimePoint> expires, TimePoint now, const std::string& who) {
    if (domain.empty() || reason.empty() || !level_rank(level) || (expires && *expires <= now))
        return common::Errc::invalid_argument;
    std::lock_guard lk(conn_.mu);
    auto& c = conn_.conn;
    auto tx = Tx::begin(c);
    if (!tx) return tx.error();
    Params p;
    p.text(domain).text(level).text(reason);
    if (expires) p.int64(to_ms(*expires));
    else p.null();
    p.int64(to_ms(now)).text(who);
    auto r = c.exec(
        "INSERT INTO policy_overrides (domain, level, reason, expires, set_at, set_by) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (domain) DO UPDATE SET level = excluded.level, reason = excluded.reason,"
        " expires = excluded.expires, set_at = excluded.set_at, set_by = excluded.set_by",
        p);
    if (!r) return r.error();
    const std::string detail = reason + (expires ? " (until " + common::iso8601(*expires) + ")" : " (no expiry)");
    if (auto a = append_audit(c, now, who, "set_override", domain, level, detail); !a) return a;
    if (auto cm = tx->commit(); !cm) return cm;
    spdlog::info("policy: {} set an override for {}: {}: {}", who, domain, level, detail);
    return {};
}

Result<void> PgPolicyStore::clear_override(const std::string& domain, const std::string& who, TimePoint now) {
    std::lock_guard lk(conn_.mu);
    auto& c = conn_.conn;
    auto tx = Tx::begin(c);
    if (!tx) return tx.error();
    auto del = c.exec("DELETE FROM policy_overrides WHERE domain = $1 RETURNING level", Params().text(domain));
    if (!del) return del.error();
    if (del->size() == 0) return common::Errc::not_found;
    if (auto r = append_audit(c, now, who, "clear_override", domain, "", "was " + del->text(0, 0)); !r) return r;
    return tx->commit();
}

Result<std::optional<Override>> PgPolicyStore::active_override(const std::string& domain, TimePoint now) {
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec(
        (std::string(kSelectOverride) + " WHERE domain = $1 AND (expires IS NULL OR expires > $2)").c_str(),
        Params().text(domain).int64(to_ms(now)));
    if (!r) return r.error();
    if (r->size() == 0) return std::optional<Override>();
    return std::optional<Override>(row_override(*r, 0));
}

Result<std::vector<Override>> PgPolicyStore::overrides() {
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec((std::string(kSelectOverride) + " ORDER BY domain COLLATE \"C\"").c_str());
    if (!r) return r.error();
    std::vector<Override> out;
    for (int i = 0; i < r->size(); ++i) out.push_back(row_override(*r, i));
    return out;
}

Result<std::vector<PolicyAudit>> PgPolicyStore::audit(const std::string& domain) {
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec(
        "SELECT id, at, who, action, domain, level, detail FROM policy_audit WHERE domain = $1 ORDER BY id",
        Params().text(domain));
    if (!r) return r.error();
    std::vector<PolicyAudit> out;
    for (int i = 0; i < r->size(); ++i)
        out.push_back({r->int64(i, 0), from_ms(r->int64(i, 1)), r->text(i, 2), r->text(i, 3), r->text(i, 4),
                       r->text(i, 5), r->text(i, 6)});
    return out;
}

}  // namespace mailward::store::postgres
