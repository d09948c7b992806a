// The TLS report's aggregation (report.hpp): log lines, learned policy, audit, incidents and escrow
// records of one period counted into a Report. No I/O.
#include "report/report.hpp"

#include <algorithm>
#include <ctime>

#include "common/ascii.hpp"

namespace mailward::report {

std::size_t total(const LevelCounts& c) {
    std::size_t n = 0;
    for (auto x : c) n += x;
    return n;
}

std::string utc_date(TimePoint t) {
    const std::time_t secs = Clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

namespace {

std::size_t idx(tls::Level l) { return static_cast<std::size_t>(l); }

std::string domain_of(const std::string& address) {
    const auto at = address.rfind('@');
    if (at == std::string::npos || at + 1 == address.size()) return "";
    return common::ascii::lower(address.substr(at + 1));
}

bool has_event(const std::vector<store::EscrowAuditEntry>& audit, std::string_view event) {
    return std::any_of(audit.begin(), audit.end(), [&](const auto& e) { return e.event == event; });
}

}  // namespace

Builder::Builder(std::string since, TimePoint from, TimePoint to) {
    r_.since = std::move(since);
    r_.from = from;
    r_.to = to;
    // Every UTC day from the period's first to its last, so that the chart shows quiet days too.
    for (auto t = from;; t += std::chrono::hours(24)) {
        auto d = utc_date(t);
        if (d > utc_date(to)) break;
        if (!day_index_.count(d)) {
            day_index_[d] = r_.days.size();
            r_.days.push_back(Day{d, {}, 0, {}});
        }
        if (d == utc_date(to)) break;
    }
    day_domains_.resize(r_.days.size());
}

void Builder::add_scan(const delivery::LogScan& scan) {
    r_.log_lines += scan.lines;
    r_.skipped_lines += scan.skipped;
    r_.before_period += scan.before;
}

void Builder::add(const delivery::LogEntry& e) {
    if (e.time < r_.from || e.time > r_.to) return;
    ++r_.attempts;
    ++r_.results[e.result];
    auto& row = rows_[e.domain];
    row.domain = e.domain;
    ++row.attempts;
    if (e.level_seen) {
        row.weakest = row.weakest ? std::min(*row.weakest, *e.level_seen) : *e.level_seen;
        row.strongest = row.strongest ? std::max(*row.strongest, *e.level_seen) : *e.level_seen;
    }
    if (e.level_seen) {
        if (auto it = day_index_.find(utc_date(e.time)); it != day_index_.end()) {
            auto [pos, added] = day_domains_[it->second].emplace(e.domain, *e.level_seen);
            if (!added) pos->second = std::min(pos->second, *e.level_seen);
        }
    }
    if (e.result == "delivered" && e.level_seen) {
        ++row.delivered[idx(*e.level_seen)];
        ++r_.messages[idx(*e.level_seen)];
        if (auto it = day_index_.find(utc_date(e.time)); it != day_index_.end())
            ++r_.days[it->second].delivered[idx(*e.level_seen)];
    }
}

void Builder::add_learned(const store::LearnedPolicy& p) {
    const auto l = tls::parse_level(p.level);
    if (!l) return;  // not on the ladder: the store refuses such rows; nothing to count
    ++r_.learned_total;
    ++r_.learned[idx(*l)];
}

void Builder::add_audit(const store::PolicyAudit& a) {
    if (a.action != "raise" || a.at < r_.from || a.at > r_.to) return;
    Change c;
    c.domain = a.domain;
    c.at = a.at;
    c.level = a.level;
    static constexpr std::string_view kRaisedFrom = "raised from ";
    if (a.detail.starts_with(kRaisedFrom)) {
        c.raised = true;
        c.from_level = a.detail.substr(kRaisedFrom.size());
    }
    r_.changes.push_back(std::move(c));
}

void Builder::add_incident(const store::PolicyIncident& i) {
    if (i.at < r_.from || i.at > r_.to) return;
    r_.incidents.push_back(i);
}

void Builder::add_escrow(const store::EscrowRecord& rec, const std::vector<store::EscrowAuditEntry>& audit) {
    if (rec.created < r_.from || rec.created > r_.to) return;
    auto& u = r_.escrow;
    ++u.sealed;
    ++r_.messages_escrowed;
    if (has_event(audit, store::escrow_event::link_opened)) ++u.opened;
    if (has_event(audit, store::escrow_event::viewed)) ++u.read;
    // A purged record has lost its state; its audit still says how it ended.
    using store::EscrowState;
    if (rec.state == EscrowState::active) ++u.active;
    if (rec.state == EscrowState::expired ||
        (rec.state == EscrowState::purged && has_event(audit, store::escrow_event::expired)))
        ++u.expired;
    if (rec.state == EscrowState::revoked ||
        (rec.state == EscrowState::purged && has_event(audit, store::escrow_event::revoked)))
        ++u.revoked;
    const auto d = domain_of(rec.recipient);
    if (!d.empty()) ++escrow_by_domain_[d];
    if (auto it = day_index_.find(utc_date(rec.created)); it != day_index_.end()) ++r_.days[it->second].escrowed;
}

Report Builder::finish() const {
    Report r = r_;
    for (std::size_t i = 0; i < day_domains_.size() && i < r.days.size(); ++i)
        for (const auto& [domain, level] : day_domains_[i]) ++r.days[i].domains[idx(level)];
    for (const auto& [domain, row] : rows_) {
        DomainRow out = row;
        if (auto it = escrow_by_domain_.find(domain); it != escrow_by_domain_.end()) out.escrowed = it->second;
        if (out.weakest) ++r.domains[idx(*out.weakest)];
        else ++r.domains_unknown;
        r.domain_rows.push_back(std::move(out));
    }
    for (const auto& [domain, n] : escrow_by_domain_) r.top_escrow_domains.emplace_back(domain, n);
    std::stable_sort(r.top_escrow_domains.begin(), r.top_escrow_domains.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    if (r.top_escrow_domains.size() > 10) r.top_escrow_domains.resize(10);
    std::stable_sort(r.changes.begin(), r.changes.end(), [](const auto& a, const auto& b) { return a.at < b.at; });
    std::stable_sort(r.incidents.begin(), r.incidents.end(), [](const auto& a, const auto& b) { return a.at < b.at; });
    return r;
}

}  // namespace mailward::report
