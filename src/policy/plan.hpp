// plan(): the one place that turns the recorded facts about a destination and a message into the
// whole decision - required level, action, reasons (decide() is its inner rule table), what is
// known of the MX hosts (the capability), and per MX host, in order: its own level, its TLSA
// records (DANE, RFC 7672 2.2), its known keys, or why it is refused (RFC 7672 2.1.1). The engine,
// `policy simulate`, `mailward check` and `queue show` all ask here. Pure: no I/O, no clock but the
// `now` argument. RFC 8461 (MTA-STS), RFC 8689 (REQUIRETLS, TLS-Required: No).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "dns/resolver.hpp"
#include "policy/decide.hpp"
#include "policy/learned.hpp"
#include "policy/mx_hosts.hpp"
#include "policy/preload.hpp"
#include "policy/tls_optional.hpp"
#include "tls/level.hpp"

namespace mailward::policy {

// The answer for _port._tcp.<MX host> (RFC 7672 2.2), as far as DANE cares.
struct TlsaFact {
    enum class State {
        not_looked_up,  // DANE off, MX set not secure, addresses not secure, or not asked yet
        none,           // no usable records: NXDOMAIN, insecure, or no DANE-TA/DANE-EE records
        records,        // a secure answer with DANE-TA(2) / DANE-EE(3) records
        lookup_failed,  // bogus, SERVFAIL, timeout: may hide DANE, the host is not used
    };
    State state = State::not_looked_up;
    std::vector<dns::TlsaRecord> records;  // usage 2 or 3 only
    std::string error;                     // lookup_failed: the resolver's message
};
// The resolver's answer as a TlsaFact (only a secure answer counts; NXDOMAIN is "none").
TlsaFact tlsa_fact(const Result<dns::TlsaAnswer>& answer);

// One MX host of the route, in the order to try.
struct MxHostFacts {
    std::string host;
    bool has_addresses = true;           // false: every address lookup failed (detail in error)
    bool address_lookup_failed = false;  // an A or AAAA lookup failed, the other may have answered
    bool addresses_secure = false;       // every address answer was DNSSEC-secure
    std::string error;                   // the route's note about this host's lookups
    TlsaFact tlsa;
};

struct RouteFacts {
    std::vector<MxHostFacts> hosts;  // in the order to try; empty: not resolved (simulate)
    bool mx_secure = false;          // the MX answer was DNSSEC-secure
};

// An MTA-STS lookup's result (RFC 8461): the policy in effect, if any, and its one-line status.
struct MtaStsFact {
    std::optional<MtaStsPolicy> policy;
    std::string status;  // "mta-sts: enforce (id X, cached)", "" when MTA-STS was not consulted
};

// The preload list's word on the domain.
struct PreloadFact {
    std::optional<tls::Level> level;  // the entry while the list is valid
    bool expired_entry = false;       // the list has an entry for the domain but has expired
    std::string source;               // the list's file
};
PreloadFact preload_fact(const PreloadList* list, const std::string& domain, std::chrono::system_clock::time_point now);

// What is recorded about a destination domain.
struct DestinationFacts {
    std::string domain;
    std::optional<tls::Level> static_level;  // [policy.domains]
    std::optional<LearnedPolicy> learned;    // the ratchet, with per-MX evidence
    std::optional<Override> override;        // active or expired (the reasons say which)
    MtaStsFact mta_sts;
    PreloadFact preload;
    RouteFacts route;
    bool dane = false;       // [policy] dane: TLSA answers are used
    bool probe_ran = false;  // a probe ran for this delivery (and the MX hosts are still unknown)
    // Per-MX levels observed elsewhere (simulate: the delivery log), used only when the learned
    // policy has no per-MX evidence and is below encrypt.
    std::vector<MxFact> observed;
    common::Duration escrow_after = std::chrono::hours(1);
    common::Duration max_queue_lifetime = std::chrono::hours(24 * 5);
    std::optional<RouteInput> routed;  // [[delivery.routes]]: route holds the next hop's hosts
};

// What is recorded about a message.
struct MessageFacts {
    config::SenderMode mode = config::SenderMode::tls_or_escrow;
    bool requiretls = false;
    bool tls_required_no = false;   // the message has "TLS-Required: No"
    TlsOptionalRight tls_optional;  // and whether its sender may use it
    std::chrono::system_clock::time_point received_at{};
    std::chrono::system_clock::time_point first_failure{};  // {}: use received_at
};

// Why an MX host of the route is not used for this attempt.
enum class HostRefusal {
    none,
    no_addresses,           // no usable address (the route's error says why)
    address_lookup_failed,  // secure MX set, an A/AAAA lookup failed (RFC 7672 2.1.1)
    tlsa_lookup_failed,     // secure MX set, the TLSA lookup failed: may hide DANE
};

// One MX host the decision allows, in order: how to attempt it, or why it is refused.
struct PlannedHost {
    std::string host;
    std::size_t index = 0;                // its place in RouteFacts::hosts
    tls::Level level = tls::Level::may;   // the session's required level (dane with TLSA)
    std::vector<std::string> why;         // the decision's reasons, then this host's own
    std::vector<dns::TlsaRecord> tlsa;    // DANE-TA/EE records from a secure answer
    std::vector<std::string> known_spki;  // leaf keys learned for this host (pins)
    HostRefusal refused = HostRefusal::none;
    std::string refusal_detail;
};

struct Plan {
    Decision decision;
    DomainCapability capability = DomainCapability::unknown;
    std::vector<PlannedHost> hosts;  // the hosts the decision allows, in order (refused included)
    // A TLS failure that falls short of this level is a possible downgrade (the learned level, or
    // encrypt for a domain whose hosts all do TLS); nullopt: nothing known to downgrade from.
    std::optional<tls::Level> downgrade_floor;
    bool confirms_learned = false;  // a delivery confirms the learned level (encrypt or better)
    // Hosts whose TLSA answer the plan would use and that was not looked up yet: look them up and
    // plan again (only when the action is deliver).
    std::vector<std::string> tlsa_wanted;
};

// What is known of the MX hosts: the learned per-MX evidence; without evidence, a learned level of
// encrypt or better means TLS-capable (learned before per-MX evidence was kept); else the observed
// levels; else unknown. The one rule for the engine and `policy simulate`.
DomainCapability capability(const DestinationFacts& d);

// The decision before an attempt, with the hosts to use.
Plan plan(const DestinationFacts& d, const MessageFacts& m, std::chrono::system_clock::time_point now);

// The answer after an attempt that required TLS could not get it: defer, escrow or bounce (never
// plaintext unless the level was lowered to may).
Decision plan_after_tls_failure(const DestinationFacts& d, const MessageFacts& m,
                                std::chrono::system_clock::time_point now);

// What the message's "TLS-Required: No" does (the rule plan() applies: REQUIRETLS wins, then the
// sender's right); nullopt when the message does not carry the header. For `queue show`.
std::optional<TlsRequiredNoEffect> tls_required_no_of(const MessageFacts& m);

// `mailward check`: what the probe's per-address levels say about the domain: the weakest level
// every host meets (none without hosts) and the capability.
struct HostsVerdict {
    tls::Level level = tls::Level::none;
    DomainCapability capability = DomainCapability::unknown;
};
HostsVerdict hosts_verdict(const std::vector<MxFact>& per_address);

// When the engine probes a domain before planning: on first contact of a sender who must not go
// in the clear, and when the last probe is stale (a day for a domain learned at encrypt or better,
// an hour otherwise). "" when no probe is due, else why ("first contact", "scheduled re-probe").
std::string probe_due(const std::optional<LearnedPolicy>& learned, config::SenderMode mode,
                      std::chrono::system_clock::time_point now);

}  // namespace mailward::policy
