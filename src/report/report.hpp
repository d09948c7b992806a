// The TLS report ("Who supports TLS?", `mailward report`): what this organisation's traffic reached
// over a period, aggregated from the delivery log (delivery_log.hpp's reader) and the store's rows
// (learned policy and its audit, incidents, escrow records and their audit). Pure: the caller reads
// and feeds; Builder counts; the render functions (render.cpp) print text, JSON or one HTML page.
// Levels are those of the ladder (tls::Level: none, may, encrypt, verify, dane).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/html_escape.hpp"
#include "delivery/delivery_log.hpp"
#include "store/escrow_store.hpp"
#include "store/policy_store.hpp"
#include "tls/level.hpp"

namespace mailward::report {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

inline constexpr std::size_t kLevels = 5;
using LevelCounts = std::array<std::size_t, kLevels>;  // indexed by tls::Level (none = 0 ... dane = 4)

// The longest period a report covers (its chart has one bar per day).
inline constexpr std::chrono::hours kMaxPeriod{366 * 24};

// One UTC day of the period.
struct Day {
    std::string date;          // "2026-12-07"
    LevelCounts delivered{};   // messages (recipients) delivered, by the TLS level the session reached
    std::size_t escrowed = 0;  // messages sealed into escrow that day
    LevelCounts domains{};     // recipient domains seen that day, each at its weakest level that day
};

// One recipient domain seen in the delivery log during the period.
struct DomainRow {
    std::string domain;
    std::size_t attempts = 0;  // log lines (one per recipient and attempt)
    LevelCounts delivered{};
    std::optional<tls::Level> weakest;    // the weakest level its hosts showed; nullopt: none told
    std::optional<tls::Level> strongest;  // the strongest
    std::size_t escrowed = 0;             // escrow records of the period for this domain
};

// A learned level that appeared or went up during the period (the ratchet's audit rows).
struct Change {
    std::string domain;
    TimePoint at{};
    bool raised = false;     // false: first learned
    std::string level;       // the level learned or raised to
    std::string from_level;  // raised: the level before; "" when learned
};

struct EscrowUsage {
    std::size_t sealed = 0;   // records created in the period
    std::size_t opened = 0;   // ... whose link was opened
    std::size_t read = 0;     // ... whose message was viewed after a code
    std::size_t expired = 0;  // ... that expired unread or read (shredded at expiry)
    std::size_t revoked = 0;  // ... revoked by an administrator or the sender
    std::size_t active = 0;   // ... still readable now
    std::optional<double> read_rate() const {
        if (sealed == 0) return std::nullopt;
        return static_cast<double>(read) / static_cast<double>(sealed);
    }
};

struct Report {
    std::string since;  // the period as given ("30d")
    TimePoint from{}, to{};
    // The delivery log.
    std::size_t log_lines = 0;                   // lines read
    std::size_t skipped_lines = 0;               // unreadable lines, counted and skipped
    std::size_t before_period = 0;               // lines older than the period
    std::size_t attempts = 0;                    // lines in the period
    std::map<std::string, std::size_t> results;  // attempts by result
    // Messages (one per recipient delivered) by the level reached; escrowed ones apart.
    LevelCounts messages{};
    std::size_t messages_escrowed = 0;
    // Recipient domains by the weakest level their hosts showed; unknown: no line told.
    LevelCounts domains{};
    std::size_t domains_unknown = 0;
    std::vector<Day> days;               // every UTC day of the period, oldest first
    std::vector<DomainRow> domain_rows;  // by domain
    // The learned policy now, and what changed during the period.
    std::size_t learned_total = 0;
    LevelCounts learned{};
    std::vector<Change> changes;                   // oldest first
    std::vector<store::PolicyIncident> incidents;  // of the period, oldest first
    EscrowUsage escrow;
    std::vector<std::pair<std::string, std::size_t>> top_escrow_domains;  // most escrowed first, at most 10
};

std::size_t total(const LevelCounts& c);

// Counts what it is fed into a Report for [from, to]. Rows outside the period are ignored.
class Builder {
  public:
    Builder(std::string since, TimePoint from, TimePoint to);
    void add_scan(const delivery::LogScan& scan);  // the reader's line counts
    void add(const delivery::LogEntry& e);
    void add_learned(const store::LearnedPolicy& p);
    void add_audit(const store::PolicyAudit& a);
    void add_incident(const store::PolicyIncident& i);
    void add_escrow(const store::EscrowRecord& rec, const std::vector<store::EscrowAuditEntry>& audit);
    Report finish() const;

  private:
    Report r_;
    std::map<std::string, DomainRow> rows_;
    std::map<std::string, std::size_t> escrow_by_domain_;
    std::map<std::string, std::size_t> day_index_;
    std::vector<std::map<std::string, tls::Level>> day_domains_;  // per day: domain -> weakest level
};

// "2026-12-07", the UTC date of t.
std::string utc_date(TimePoint t);

// ---- renderings (render.cpp) ----

std::string render_text(const Report& r);
nlohmann::json render_json(const Report& r);
std::string render_html(const Report& r);
// &, <, >, " and ' as character references: every string from the data goes through it.
using common::html_escape;

}  // namespace mailward::report
