// The learned TLS policy over SQLite (schema versions 2 and 3, see migrations.cpp): the ratchet
// (raise only; an administrator forgets), per-MX evidence, and the append-only probe history,
// incidents and audit; admin overrides with optional expiry. Every multi-statement change is one
// transaction on the shared connection, under its mutex. Inputs are validated before any write.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>

#include "common/timefmt.hpp"
#include "store/sqlite/internal.hpp"

namespace mailward::store::sqlite {
namespace {

template <class T>
Result<T> fail(error_code ec) {
    return Result<T>(boost::system::in_place_error, ec);
}

bool valid_evidence(const std::vector<MxEvidence>& mx) {
    for (const auto& e : mx)
        if (e.host.empty() || !level_rank(e.level)) return false;
    return true;
}

std::int64_t flag(bool b) { return b ? 1 : 0; }

Result<std::vector<MxEvidence>> read_evidence(Db& db, const std::string& domain) {
    auto st = db.prepare(
        "SELECT host, address, level, starttls, protocol, cipher, chain_valid, name_matched,"
        " spki_sha256, dane_matched, seen_at FROM policy_evidence WHERE domain = ?1 ORDER BY host, "
        "address");
    if (!st) return st.error();
    st->bind(1, domain);
    std::vector<MxEvidence> out;
    for (;;) {
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) break;
        MxEvidence e;
        e.host = st->text(0);
        e.address = st->text(1);
        e.level = st->text(2);
        e.starttls = st->int64(3) != 0;
        e.protocol = st->text(4);
        e.cipher = st->text(5);
        e.chain_valid = st->int64(6) != 0;
        e.name_matched = st->int64(7) != 0;
        e.spki_sha256 = st->text(8);
        e.dane_matched = st->int64(9) != 0;
        e.seen_at = from_ms(st->int64(10));
        out.push_back(std::move(e));
    }
    return out;
}

// Replaces domain's evidence with mx; the caller holds a write transaction and has validated mx.
Result<void> write_evidence(Db& db, const std::string& domain, const std::vector<MxEvidence>& mx) {
    {
        auto del = db.prepare("DELETE FROM policy_evidence WHERE domain = ?1");
        if (!del) return del.error();
        del->bind(1, domain);
        if (auto r = del->run(); !r) return r;
    }
    // A host/address given twice: the last one wins.
    auto ins = db.prepare(
        "INSERT INTO policy_evidence (domain, host, address, level, starttls, protocol, cipher, "
        "chain_valid,"
        " name_matched, spki_sha256, dane_matched, seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
        "?8, ?9, ?10, ?11, ?12)"
        " ON CONFLICT (domain, host, address) DO UPDATE SET level = excluded.level, starttls = "
        "excluded.starttls,"
        " protocol = excluded.protocol, cipher = excluded.cipher, chain_valid = "
        "excluded.chain_valid,"
        " name_matched = excluded.name_matched, spki_sha256 = excluded.spki_sha256,"
        " dane_matched = excluded.dane_matched, seen_at = excluded.seen_at");
    if (!ins) return ins.error();
    for (const auto& e : mx) {
        ins->bind(1, domain).bind(2, e.host).bind(3, e.address).bind(4, e.level).bind(5, flag(e.starttls));
        ins->bind(6, e.protocol).bind(7, e.cipher).bind(8, flag(e.chain_valid)).bind(9, flag(e.name_matched));
        ins->bind(10, e.spki_sha256).bind(11, flag(e.dane_matched)).bind(12, to_ms(e.seen_at));
        if (auto r = ins->run(); !r) return r;
        ins->reset();
    }
    return {};
}

// Appends one audit row; the caller holds a write transaction.
Result<void> append_audit(Db& db, TimePoint at, std::string_view who, std::string_view action,
                          const std::string& domain, std::string_view level, const std::string& detail) {
    auto st = db.prepare(
        "INSERT INTO policy_audit (at, who, action, domain, level, detail) VALUES (?1, ?2, ?3, ?4, "
        "?5, ?6)");
    if (!st) return st.error();
    st->bind(1, to_ms(at)).bind(2, who).bind(3, action).bind(4, domain).bind(5, level).bind(6, detail);
    return st->run();
}

constexpr const char* kSelectPolicy =
    "SELECT lp.domain, lp.level, lp.first_seen, lp.last_confirmed, lp.evidence,"
    " (SELECT max(ph.at) FROM probe_history ph WHERE ph.domain = lp.domain) FROM learned_policy lp";

LearnedPolicy row_policy(const Stmt& st) {
    LearnedPolicy p;
    p.domain = st.text(0);
    p.level = st.text(1);
    p.first_seen = from_ms(st.int64(2));
    p.last_confirmed = from_ms(st.int64(3));
    p.evidence = st.text(4);
    if (!st.is_null(5)) p.last_probe = from_ms(st.int64(5));
    return p;
}

constexpr const char* kSelectOverride = "SELECT domain, level, reason, expires, set_at, set_by FROM policy_overrides";

Override row_override(const Stmt& st) {
    Override o;
    o.domain = st.text(0);
    o.level = st.text(1);
    o.reason = st.text(2);
    if (!st.is_null(3)) o.expires = from_ms(st.int64(3));
    o.set_at = from_ms(st.int64(4));
    o.set_by = st.text(5);
    return o;
}

}  // namespace

// ---- the learned level ----

Result<std::optional<LearnedPolicy>> SqlitePolicyStore::get(const std::string& domain) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, false);  // the row and its evidence from one snapshot
    if (!tx) return tx.error();
    std::optional<LearnedPolicy> out;
    {
        auto st = conn_.db.prepare(std::string(kSelectPolicy) + " WHERE lp.domain = ?1");
        if (!st) return st.error();
        st->bind(1, domain);
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) return out;
        out = row_policy(*st);
    }
    auto mx = read_evidence(conn_.db, domain);
    if (!mx) return mx.error();
    out->mx = std::move(*mx);
    return out;
}

Result<std::vector<LearnedPolicy>> SqlitePolicyStore::list() {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, false);
    if (!tx) return tx.error();
    std::vector<LearnedPolicy> out;
    {
        auto st = conn_.db.prepare(std::string(kSelectPolicy) + " ORDER BY lp.domain");
        if (!st) return st.error();
        for (;;) {
            auto row = st->step();
            if (!row) return row.error();
            if (!*row) break;
            out.push_back(row_policy(*st));
        }
    }
    for (auto& p : out) {
        auto mx = read_evidence(conn_.db, p.domain);
        if (!mx) return mx.error();
        p.mx = std::move(*mx);
    }
    return out;
}

Result<bool> SqlitePolicyStore::raise(const std::string& domain, const std::string& level,
                                      const std::vector<MxEvidence>& mx, const std::string& report, TimePoint now) {
    const auto rank = level_rank(level);
    if (domain.empty() || !rank || !valid_evidence(mx)) return fail<bool>(common::Errc::invalid_argument);
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, true);
    if (!tx) return fail<bool>(tx.error());

    std::optional<std::int64_t> old_rank;
    std::string old_level;
    {
        auto st = conn_.db.prepare("SELECT rank, level FROM learned_policy WHERE domain = ?1");
        if (!st) return fail<bool>(st.error());
        st->bind(1, domain);
        auto row = st->step();
        if (!row) return fail<bool>(row.error());
        if (*row) {
            old_rank = st->int64(0);
            old_level = st->text(1);
        }
    }
    if (old_rank && *rank < *old_rank) return false;  // weaker: the ratchet keeps what it knows

    bool changed = false;
    if (!old_rank) {
        auto st = conn_.db.prepare(
            "INSERT INTO learned_policy (domain, level, rank, first_seen, last_confirmed, evidence)"
            " VALUES (?1, ?2, ?3, ?4, ?4, ?5)");
        if (!st) return fail<bool>(st.error());
        st->bind(1, domain)
            .bind(2, level)
            .bind(3, static_cast<std::int64_t>(*rank))
            .bind(4, to_ms(now))
            .bind(5, report);
        if (auto r = st->run(); !r) return fail<bool>(r.error());
        if (auto r = append_audit(conn_.db, now, "ratchet", "raise", domain, level, "learned"); !r)
            return fail<bool>(r.error());
        changed = true;
    } else if (*rank > *old_rank) {
        auto st = conn_.db.prepare(
            "UPDATE learned_policy SET level = ?2, rank = ?3, last_confirmed = ?4, evidence = ?5 "
            "WHERE domain = ?1");
        if (!st) return fail<bool>(st.error());
        st->bind(1, domain)
            .bind(2, level)
            .bind(3, static_cast<std::int64_t>(*rank))
            .bind(4, to_ms(now))
            .bind(5, report);
        if (auto r = st->run(); !r) return fail<bool>(r.error());
        if (auto r = append_audit(conn_.db, now, "ratchet", "raise", domain, level, "raised from " + old_level); !r)
            return fail<bool>(r.error());
        changed = true;
    } else {
        auto st = conn_.db.prepare("UPDATE learned_policy SET last_confirmed = ?2 WHERE domain = ?1");
        if (!st) return fail<bool>(st.error());
        st->bind(1, domain).bind(2, to_ms(now));
        if (auto r = st->run(); !r) return fail<bool>(r.error());
    }
    if (!mx.empty())
        if (auto r = write_evidence(conn_.db, domain, mx); !r) return fail<bool>(r.error());
    if (auto r = tx->commit(); !r) return fail<bool>(r.error());
    return changed;
}

Result<void> SqlitePolicyStore::confirm(const std::string& domain, const std::vector<MxEvidence>& mx, TimePoint now) {
    if (!valid_evidence(mx)) return common::Errc::invalid_argument;
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, true);
    if (!tx) return tx.error();
    {
        auto st = conn_.db.prepare("UPDATE learned_policy SET last_confirmed = ?2 WHERE domain = ?1");
        if (!st) return st.error();
        st->bind(1, domain).bind(2, to_ms(now));
        if (auto r = st->run(); !r) return r;
        if (conn_.db.changes() == 0) return common::Errc::not_found;
    }
    if (!mx.empty())
        if (auto r = write_evidence(conn_.db, domain, mx); !r) return r;
    return tx->commit();
}

Result<void> SqlitePolicyStore::forget(const std::string& domain, const std::string& who, TimePoint now) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, true);
    if (!tx) return tx.error();
    std::string old_level;
    {
        auto st = conn_.db.prepare("SELECT level FROM learned_policy WHERE domain = ?1");
        if (!st) return st.error();
        st->bind(1, domain);
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) return common::Errc::not_found;
        old_level = st->text(0);
    }
    for (const char* sql :
         {"DELETE FROM policy_evidence WHERE domain = ?1", "DELETE FROM learned_policy WHERE domain = ?1"}) {
        auto st = conn_.db.prepare(sql);
        if (!st) return st.error();
        st->bind(1, domain);
        if (auto r = st->run(); !r) return r;
    }
    if (auto r = append_audit(conn_.db, now, who, "forget", domain, "", "was " + old_level); !r) return r;
    if (auto r = tx->commit(); !r) return r;
    spdlog::info("policy: {} forgot the learned level of {} (was {})", who, domain, old_level);
    return {};
}

// ---- probe history ----

Result<void> SqlitePolicyStore::record_probe(const std::string& domain, const std::string& level,
                                             const std::string& report, TimePoint now) {
    if (domain.empty() || !level_rank(level)) return common::Errc::invalid_argument;
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare("INSERT INTO probe_history (domain, at, level, report) VALUES (?1, ?2, ?3, ?4)");
    if (!st) return st.error();
    st->bind(1, domain).bind(2, to_ms(now)).bind(3, level).bind(4, report);
    return st->run();
}

Result<std::vector<ProbeRecord>> SqlitePolicyStore::probes(const std::string& domain, std::size_t limit) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(
        "SELECT id, domain, at, level, report FROM probe_history WHERE domain = ?1 ORDER BY id "
        "DESC LIMIT ?2");
    if (!st) return st.error();
    const auto cap = static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX));
    st->bind(1, domain).bind(2, cap);
    std::vector<ProbeRecord> out;
    for (;;) {
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) break;
        out.push_back({st->int64(0), st->text(1), from_ms(st->int64(2)), st->text(3), st->text(4)});
    }
    return out;
}

// ---- incidents ----

Result<void> SqlitePolicyStore::add_incident(const PolicyIncident& i) {
    if (i.domain.empty() || i.kind.empty()) return common::Errc::invalid_argument;
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(
        "INSERT INTO policy_incidents (domain, at, kind, detail, host, address, raw_evidence)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (!st) return st.error();
    st->bind(1, i.domain).bind(2, to_ms(i.at)).bind(3, i.kind).bind(4, i.detail);
    st->bind(5, i.host).bind(6, i.address).bind(7, i.raw_evidence);
    return st->run();
}

Result<std::vector<PolicyIncident>> SqlitePolicyStore::incidents(const std::string& domain) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(
        "SELECT id, domain, at, kind, detail, host, address, raw_evidence FROM policy_incidents"
        " WHERE domain = ?1 ORDER BY id");
    if (!st) return st.error();
    st->bind(1, domain);
    std::vector<PolicyIncident> out;
    for (;;) {
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) break;
        PolicyIncident i;
        i.id = st->int64(0);
        i.domain = st->text(1);
        i.at = from_ms(st->int64(2));
        i.kind = st->text(3);
        i.detail = st->text(4);
        i.host = st->text(5);
        i.address = st->text(6);
        i.raw_evidence = st->text(7);
        out.push_back(std::move(i));
    }
    return out;
}

// ---- overrides ----

Result<void> SqlitePolicyStore::set_override(const std::string& domain, const std::string& level,
                                             const std::string& reason, std::optional<TimePoint> expires, TimePoint now,
                                             const std::string& who) {
    if (domain.empty() || reason.empty() || !level_rank(level) || (expires && *expires <= now))
        return common::Errc::invalid_argument;
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, true);
    if (!tx) return tx.error();
    {
        auto st = conn_.db.prepare(
            "INSERT INTO policy_overrides (domain, level, reason, expires, set_at, set_by)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (domain) DO UPDATE SET level = "
            "excluded.level,"
            " reason = excluded.reason, expires = excluded.expires, set_at = excluded.set_at, "
            "set_by = excluded.set_by");
        if (!st) return st.error();
        st->bind(1, domain).bind(2, level).bind(3, reason);
        if (expires) st->bind(4, to_ms(*expires));
        else st->bind_null(4);
        st->bind(5, to_ms(now)).bind(6, who);
        if (auto r = st->run(); !r) return r;
    }
    const std::string detail = reason + (expires ? " (until " + common::iso8601(*expires) + ")" : " (no expiry)");
    if (auto r = append_audit(conn_.db, now, who, "set_override", domain, level, detail); !r) return r;
    if (auto r = tx->commit(); !r) return r;
    spdlog::info("policy: {} set an override for {}: {}: {}", who, domain, level, detail);
    return {};
}

Result<void> SqlitePolicyStore::clear_override(const std::string& domain, const std::string& who, TimePoint now) {
    std::lock_guard lk(conn_.mu);
    auto tx = Tx::begin(conn_.db, true);
    if (!tx) return tx.error();
    std::string old_level;
    {
        auto st = conn_.db.prepare("SELECT level FROM policy_overrides WHERE domain = ?1");
        if (!st) return st.error();
        st->bind(1, domain);
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) return common::Errc::not_found;
        old_level = st->text(0);
    }
    {
        auto st = conn_.db.prepare("DELETE FROM policy_overrides WHERE domain = ?1");
        if (!st) return st.error();
        st->bind(1, domain);
        if (auto r = st->run(); !r) return r;
    }
    if (auto r = append_audit(conn_.db, now, who, "clear_override", domain, "", "was " + old_level); !r) return r;
    return tx->commit();
}

Result<std::optional<Override>> SqlitePolicyStore::active_override(const std::string& domain, TimePoint now) {
    std::lock_guard lk(conn_.mu);
    auto st =
        conn_.db.prepare(std::string(kSelectOverride) + " WHERE domain = ?1 AND (expires IS NULL OR expires > ?2)");
    if (!st) return st.error();
    st->bind(1, domain).bind(2, to_ms(now));
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) return std::optional<Override>();
    return std::optional<Override>(row_override(*st));
}

Result<std::vector<Override>> SqlitePolicyStore::overrides() {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(std::string(kSelectOverride) + " ORDER BY domain");
    if (!st) return st.error();
    std::vector<Override> out;
    for (;;) {
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) break;
        out.push_back(row_override(*st));
    }
    return out;
}

Result<std::vector<PolicyAudit>> SqlitePolicyStore::audit(const std::string& domain) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(
        "SELECT id, at, who, action, domain, level, detail FROM policy_audit WHERE domain = ?1 "
        "ORDER BY id");
    if (!st) return st.error();
    st->bind(1, domain);
    std::vector<PolicyAudit> out;
    for (;;) {
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) break;
        out.push_back(
            {st->int64(0), from_ms(st->int64(1)), st->text(2), st->text(3), st->text(4), st->text(5), st->text(6)});
    }
    return out;
}

}  // namespace mailward::store::sqlite
