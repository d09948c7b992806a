// Storage of the learned TLS policy (docs/design.md: the ratchet): per recipient domain the learned
// level with per-MX evidence, the probe history, incidents, admin overrides and an audit trail.
// Levels travel by name ("none", "may", "encrypt", "verify", "dane") so that store/ does not depend
// on tls/; policy/learned.hpp converts. Callers are trusted code; level names, reasons and expiry
// times are still validated before anything is written. History tables (probes, incidents, audit)
// are append-only, enforced by the schema.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace mailward::store {

using Clock = std::chrono::system_clock;  // as in store.hpp
using TimePoint = Clock::time_point;

// The position of a level name on the ladder, none = 0 ... dane = 4 (the values of tls::Level; a
// policy test checks that both agree). nullopt for anything else.
std::optional<int> level_rank(std::string_view name);

// What one MX address showed when it was probed or delivered to.
struct MxEvidence {
    std::string host;           // MX host name, lower case, no trailing dot
    std::string address;        // IP address literal
    std::string level;          // the strongest level this address met (a ladder name)
    bool starttls = false;      // STARTTLS offered in EHLO
    std::string protocol;       // "TLSv1.3", "" without TLS
    std::string cipher;         // "TLS_AES_256_GCM_SHA384", "" without TLS
    bool chain_valid = false;   // PKIX chain to a trusted root
    bool name_matched = false;  // certificate names the MX host (or an MTA-STS mx pattern)
    std::string spki_sha256;    // hex SHA-256 of the leaf's SubjectPublicKeyInfo, "" without TLS
    bool dane_matched = false;  // a DNSSEC-secure TLSA record matched (false when there is none)
    TimePoint seen_at{};
};

// One domain's learned level. An administrator's forget() removes it; nothing else lowers it.
struct LearnedPolicy {
    std::string domain;
    std::string level;                    // a ladder name
    TimePoint first_seen{};               // when the domain was first learned (kept when raised)
    TimePoint last_confirmed{};           // last probe or delivery that met the level
    std::optional<TimePoint> last_probe;  // newest probe recorded for the domain, if any
    std::string evidence;                 // the report (JSON) that raised the level to what it is
    std::vector<MxEvidence> mx;           // per MX address, as of the last raise or confirm
};

// Kinds of incident mailward records. The store keeps the kind as free text (to_string() below,
// the names existing databases hold; older builds wrote others, such as "tls_failed").
enum class IncidentKind {
    starttls_missing,     // EHLO without STARTTLS
    starttls_454,         // STARTTLS refused
    handshake_failed,     // STARTTLS offered, but no TLS session came of it
    certificate_changed,  // SPKI changed, no valid chain naming the host explains it
    level_not_met,        // TLS, but below the level
};
inline std::string_view to_string(IncidentKind k) {
    switch (k) {
        case IncidentKind::starttls_missing: return "starttls_missing";
        case IncidentKind::starttls_454: return "starttls_454";
        case IncidentKind::handshake_failed: return "handshake_failed";
        case IncidentKind::certificate_changed: return "certificate_changed";
        case IncidentKind::level_not_met: return "level_not_met";
    }
    return "level_not_met";
}

// Something that looked like a downgrade of a domain known to do TLS. Append-only.
struct PolicyIncident {
    std::string domain;
    TimePoint at{};
    std::string kind;          // to_string(IncidentKind) for what mailward writes
    std::string detail;        // one line for a person
    std::string host;          // MX host, "" when not tied to one
    std::string address;       // IP address, "" when not tied to one
    std::string raw_evidence;  // what was seen, verbatim (EHLO lines, reply, certificate facts)
    std::int64_t id = 0;       // set by the store (ignored by add_incident)
};

// One probe of a domain: the verdict (the level every MX address met) and the full report.
struct ProbeRecord {
    std::int64_t id = 0;
    std::string domain;
    TimePoint at{};
    std::string level;   // a ladder name
    std::string report;  // JSON, as the prober wrote it
};

// An administrator's level for a domain: it may lower (or raise) what the domain requires.
struct Override {
    std::string domain;
    std::string level;                 // a ladder name
    std::string reason;                // never empty
    std::optional<TimePoint> expires;  // none: until cleared
    TimePoint set_at{};
    std::string set_by;
    bool active(TimePoint now) const { return !expires || now < *expires; }
};

// Who changed what, append-only: raises by the ratchet, overrides set and cleared, forgets.
struct PolicyAudit {
    std::int64_t id = 0;
    TimePoint at{};
    std::string who;     // administrator, or "ratchet" for automatic raises
    std::string action;  // "raise", "set_override", "clear_override", "forget"
    std::string domain;
    std::string level;   // the level set or raised to; "" for clear_override and forget
    std::string detail;  // reason, previous level, ...
};

// One fetched MTA-STS policy: the TXT record's id it was fetched under, the policy text as served
// (bounded by the fetcher), and until when it may be used (fetched_at + max_age).
struct StoredMtaSts {
    std::string domain;  // lower case, no trailing dot
    std::string id;
    std::string policy;  // the policy file's text
    TimePoint fetched_at{};
    TimePoint expires{};
};

// What put_mta_sts() accepts: domain, id and policy not empty, expires after fetched_at.
bool valid_mta_sts(const StoredMtaSts& p);

// TLS-RPT (RFC 8460) counts for one UTC day: one row per policy and outcome. result_type "" is a
// success (the receiving fields are then ""); policy_strings and mx_hosts hold one item a line.
struct TlsRptCount {
    std::string day;  // YYYY-MM-DD, UTC
    std::string policy_domain;
    std::string policy_type;  // "sts", "tlsa", "no-policy-found"
    std::string policy_strings;
    std::string mx_hosts;
    std::string result_type;  // RFC 8460 4.3 result type, "" for a success
    std::string sending_ip;
    std::string receiving_mx;
    std::string receiving_ip;
    std::int64_t count = 0;
};

class PolicyStore {
  public:
    virtual ~PolicyStore() = default;

    // ---- the learned level (the ratchet) ----
    virtual Result<std::optional<LearnedPolicy>> get(const std::string& domain) = 0;
    virtual Result<std::vector<LearnedPolicy>> list() = 0;  // ordered by domain
    // Learns level for domain, or raises it when level is stricter than what is known; then mx
    // (when not empty) replaces the per-MX evidence, report becomes the evidence, last_confirmed
    // is now and an audit row says so. The same level only confirms (as confirm(), report kept).
    // A weaker level changes nothing: the ratchet never lowers, and weaker evidence does not
    // confirm a stronger level. Returns whether the level changed (a new domain counts).
    // Errors: invalid_argument (empty domain, unknown level name, evidence without host or level).
    virtual Result<bool> raise(const std::string& domain, const std::string& level, const std::vector<MxEvidence>& mx,
                               const std::string& report, TimePoint now) = 0;
    // The first slice's form, kept for its callers (rank is implied by level and ignored):
    // raise(domain, level, {no evidence}, evidence, now).
    Result<bool> raise(const std::string& domain, const std::string& level, int rank, const std::string& evidence,
                       TimePoint now) {
        return raise(domain, level, std::vector<MxEvidence>{}, evidence, now);
    }
    // A probe or delivery met the learned level: last_confirmed = now; mx (when not empty)
    // replaces the per-MX evidence. not_found when nothing is learned about domain.
    virtual Result<void> confirm(const std::string& domain, const std::vector<MxEvidence>& mx, TimePoint now) = 0;
    // Administrator only: drops the learned level and its evidence (probe history, incidents and
    // overrides stay) and records who did it. not_found when nothing is learned.
    virtual Result<void> forget(const std::string& domain, const std::string& who, TimePoint now) = 0;
    // The first slice's form, kept for its callers: forget(domain, "admin", Clock::now()).
    Result<void> forget(const std::string& domain) { return forget(domain, "admin", Clock::now()); }

    // ---- probe history (append-only) ----
    virtual Result<void> record_probe(const std::string& domain, const std::string& level, const std::string& report,
                                      TimePoint now) = 0;
    virtual Result<std::vector<ProbeRecord>> probes(const std::string& domain,
                                                    std::size_t limit) = 0;  // newest first

    // ---- incidents (append-only) ----
    virtual Result<void> add_incident(const PolicyIncident& incident) = 0;
    virtual Result<std::vector<PolicyIncident>> incidents(const std::string& domain) = 0;  // oldest first

    // ---- admin overrides (each change also goes to the audit) ----
    // Replaces domain's override. invalid_argument: empty domain or reason, unknown level, or
    // expires not after now.
    virtual Result<void> set_override(const std::string& domain, const std::string& level, const std::string& reason,
                                      std::optional<TimePoint> expires, TimePoint now, const std::string& who) = 0;
    // Removes domain's override (expired or not). not_found when there is none.
    virtual Result<void> clear_override(const std::string& domain, const std::string& who, TimePoint now) = 0;
    // domain's override when it has not expired at now (expires is exclusive).
    virtual Result<std::optional<Override>> active_override(const std::string& domain, TimePoint now) = 0;
    virtual Result<std::vector<Override>> overrides() = 0;  // every domain's, expired included

    virtual Result<std::vector<PolicyAudit>> audit(const std::string& domain) = 0;  // oldest first

    // ---- MTA-STS policies as fetched (RFC 8461 section 5.1), shared by every node ----
    // One row per domain; policy/mta_sts_store.hpp parses the text again on every read.
    // Stores p unless the row there was fetched at the same time or later (two nodes fetching at
    // once: the newer fetch wins whatever the order of the writes). Returns whether p was stored.
    // invalid_argument: empty domain, id or policy text, or expires not after fetched_at.
    virtual Result<bool> put_mta_sts(const StoredMtaSts& p) = 0;
    virtual Result<std::optional<StoredMtaSts>> mta_sts(const std::string& domain) = 0;
    virtual Result<std::vector<StoredMtaSts>> mta_sts_all() = 0;  // ordered by domain, expired included
    // Removes the rows that expired before now (a domain that dropped MTA-STS); returns how many.
    virtual Result<std::size_t> purge_mta_sts(TimePoint now) = 0;

    // ---- TLS-RPT (RFC 8460) daily counts and the reports sent, shared by every node ----
    // Adds each row's count to the row with the same key (day and every other field but count):
    // several nodes and several calls sum. invalid_argument: a bad day, no domain or type, count < 1.
    virtual Result<void> add_tlsrpt(const std::vector<TlsRptCount>& rows) = 0;
    // The rows of day, ordered by domain, policy, result and receiving host.
    virtual Result<std::vector<TlsRptCount>> tlsrpt_day(const std::string& day) = 0;
    // Claims the report of (day, domain): true for the one caller that inserted the claim, false
    // when it was claimed before (by this node or another): each report is sent once.
    virtual Result<bool> claim_tlsrpt(const std::string& day, const std::string& domain, const std::string& report_id,
                                      TimePoint now) = 0;
    // Removes counts and claims of days before `before` (YYYY-MM-DD); returns the rows removed.
    virtual Result<std::size_t> purge_tlsrpt(const std::string& before) = 0;
};

// What add_tlsrpt() accepts (day YYYY-MM-DD, domain and type given, count >= 1).
bool valid_tlsrpt(const TlsRptCount& c);

}  // namespace mailward::store
