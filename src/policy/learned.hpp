// The learned policy as policy/ sees it: levels as tls::Level instead of the names the store keeps,
// the admin override, and typed access to store::PolicyStore (the ratchet's operations). Rows
// from the store are trusted only after their level names parse (an unknown name is corrupt).
// Downgrade detection (issue 4, item 5): what a new observation shows that the known evidence does
// not explain. RFC 7672 (DANE) and RFC 8461 (MTA-STS) facts arrive pre-digested in MxEvidence.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "store/policy_store.hpp"
#include "tls/level.hpp"

namespace mailward::policy {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;
using store::MxEvidence;  // per MX address facts (level by name)
using Incident = store::PolicyIncident;

struct LearnedPolicy {
    std::string domain;
    tls::Level level = tls::Level::none;
    TimePoint first_seen{};
    TimePoint last_confirmed{};
    std::optional<TimePoint> last_probe;
    std::vector<MxEvidence> evidence;  // per MX address
    std::size_t mx_hosts() const;      // distinct host names in evidence
};

struct Override {
    std::string domain;
    tls::Level level = tls::Level::may;
    std::string reason;
    std::optional<TimePoint> expires;  // none: until cleared
    TimePoint set_at{};
    std::string set_by;
    bool active(TimePoint now) const { return !expires || now < *expires; }
};

// Conversions from the store's rows; Errc::corrupt when a level name is not on the ladder.
Result<LearnedPolicy> from_store(const store::LearnedPolicy& p);
Result<Override> from_store(const store::Override& o);

// Typed access to the store (these block: run them where blocking is allowed).
Result<std::optional<LearnedPolicy>> load_learned(store::PolicyStore& s, const std::string& domain);
Result<std::optional<Override>> load_override(store::PolicyStore& s, const std::string& domain, TimePoint now);
// The ratchet: see store::PolicyStore::raise (never lowers; returns whether the level changed).
Result<bool> raise(store::PolicyStore& s, const std::string& domain, tls::Level level,
                   const std::vector<MxEvidence>& mx, const std::string& report, TimePoint now);
Result<void> record_probe(store::PolicyStore& s, const std::string& domain, tls::Level verdict,
                          const std::string& report, TimePoint now);
Result<void> set_override(store::PolicyStore& s, const std::string& domain, tls::Level level, const std::string& reason,
                          std::optional<TimePoint> expires, TimePoint now, const std::string& who);

// Compares what was just seen (probe or delivery attempt, one entry per MX address) with what is
// known, for a domain learned at encrypt or better, and returns one incident per address that
// looks like a downgrade: STARTTLS no longer offered (starttls_missing), TLS below the learned
// level (level_not_met), or a leaf key (SPKI) different from the known one without a valid chain
// naming the host (certificate_changed; a renewed, valid certificate is not an incident). Addresses
// not in the known evidence are compared by level only. Empty when known is below encrypt.
std::vector<Incident> downgrade_incidents(const LearnedPolicy& known, const std::vector<MxEvidence>& seen,
                                          TimePoint now);

}  // namespace mailward::policy
