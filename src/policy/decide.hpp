// decide(): the rule table that turns every TLS policy source into the level a (message, domain)
// requires and what to do with the message (docs/design.md: security levels, sender modes, the
// ratchet). Pure: no I/O, no clock. Its only caller outside tests is policy::plan() (plan.hpp),
// which builds the inputs from the recorded facts. RFC 8689 (REQUIRETLS, TLS-Required: No),
// RFC 8461 (MTA-STS), RFC 7672 (SMTP DANE).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/duration.hpp"
#include "config/config.hpp"
#include "policy/learned.hpp"
#include "policy/tls_optional.hpp"
#include "tls/level.hpp"

namespace mailward::policy {

// An MTA-STS policy as fetched and cached by its fetcher (RFC 8461 section 3.2).
struct MtaStsPolicy {
    enum class Mode { enforce, testing, none };
    Mode mode = Mode::none;
    std::vector<std::string> mx;      // "mx" patterns: "mail.example.com", "*.example.net"
    std::chrono::seconds max_age{0};  // informational here; the fetcher owns the cache
};

// Everything decide() weighs for one (message, recipient domain).
// A [[delivery.routes]] next hop in place of the domain's MX hosts: its floor joins what the domain
// and the sender require (a route never lowers them); MTA-STS mx patterns and what is known of the
// domain's own MX hosts do not apply to the next hop.
struct RouteInput {
    std::string name;
    std::optional<tls::Level> floor;  // the route's tls
};

struct PolicyInputs {
    std::string domain;                      // for the reasons only
    std::optional<tls::Level> static_level;  // [policy.domains] (see static_level())
    std::optional<LearnedPolicy> learned;    // the ratchet
    bool dane_usable = false;                // DNSSEC-secure MX and secure TLSA for every MX host (plan() sets it)
    std::optional<MtaStsPolicy> mta_sts;     // a valid (unexpired) policy, if the domain has one
    std::optional<tls::Level> preload;       // preload list entry
    bool requiretls = false;                 // the message has REQUIRETLS (MAIL FROM parameter)
    // The MX set is authenticated: a DNSSEC-secure MX answer, or MX hosts checked against an
    // MTA-STS enforce policy. DANE and MTA-STS enforce imply it. RFC 8689 section 4.2.1.
    bool mx_authenticated = false;
    // The message carries the header "TLS-Required: No" (has_tls_required_no()).
    bool tls_required_no = false;
    // Whether its sender may use that header (tls_optional_right()); without the right the header
    // is ignored and the reasons say why. RFC 8689 section 5 leaves the choice to the operator.
    TlsOptionalRight tls_optional;
    config::SenderMode mode = config::SenderMode::tls_or_escrow;
    std::optional<Override> override;                       // the domain's admin override (expired ones ignored)
    common::Duration escrow_after = std::chrono::hours(1);  // [policy] escrow_after
    common::Duration max_queue_lifetime = std::chrono::hours(24 * 5);  // [delivery] max_queue_lifetime
    std::optional<RouteInput> route;                                   // a configured next hop for the domain
};

// What is known of the domain's MX hosts before an attempt (see capability_of() in mx_hosts.hpp).
enum class DomainCapability {
    tls_capable,  // every MX host does TLS at encrypt or better (learned or freshly probed)
    partial_tls,  // some MX hosts do, some are known not to: NOT TLS-capable (issue 4, item 6)
    no_tls,       // no MX host does TLS
    unknown,      // not probed (or the probe could not finish)
};
std::string_view to_string(DomainCapability c);

// Where the message is: about to be attempted, or an attempt that required TLS (encrypt or better)
// could not get it (STARTTLS missing or refused, handshake failed, level not met).
struct BeforeAttempt {
    DomainCapability capability = DomainCapability::unknown;
};
struct AfterTlsFailure {
    std::chrono::system_clock::time_point first_failure{};  // first TLS failure for this message
                                                            // and domain; {} = use received_at
    std::chrono::system_clock::time_point received_at{};    // the message's
};
using Situation = std::variant<BeforeAttempt, AfterTlsFailure>;

enum class Action {
    deliver,  // attempt delivery; the session must not go below level
    escrow,   // seal in escrow and send a notice (until escrow exists: hold as awaiting_escrow)
    bounce,   // permanent failure with a DSN; status and summary say why
    defer,    // keep queued and retry (probe first when probe_needed)
};
std::string_view to_string(Action a);

struct Decision {
    tls::Level level = tls::Level::may;  // the required level (informational unless deliver)
    Action action = Action::defer;
    std::vector<std::string> reasons;      // every source that took part, then the action's reason
    bool plaintext_allowed = false;        // deliver without TLS is acceptable (level <= may)
    bool only_tls_hosts = false;           // use only MX hosts known to meet level (see usable_hosts())
    bool probe_needed = false;             // defer until every MX host has been probed
    std::vector<std::string> mx_patterns;  // MTA-STS enforce in effect: only hosts matching these
    std::string status;                    // RFC 3463 status for bounce ("5.7.4"), "" otherwise
    std::string summary;                   // one line for logs, `queue show` and the DSN
    // The message had "TLS-Required: No" and it did not lower the level: the sender lacks the
    // right, or REQUIRETLS overrides it (the reasons say which).
    bool tls_required_no_ignored = false;
};

// Combines the inputs. The rules (the sender-mode table of docs/design.md, made exact):
//  1. The domain requires the strictest of: static policy, learned level, DANE (-> dane),
//     MTA-STS enforce (-> verify; testing and none only report), preload, and what is known of the
//     MX hosts (all do TLS -> encrypt; after a TLS failure -> encrypt: it is known to support TLS).
//  2. An active admin override replaces what the domain requires (it may lower or raise it); an
//     expired one is ignored and said so. It does not change 3 or 4.
//  3. REQUIRETLS -> verify, and the MX set must be authenticated (RFC 8689 section 4.2.1);
//     otherwise "TLS-Required: No" from a sender with the right (tls_optional) lowers the message
//     to the admin's floor: the active override's level, else the static [policy.domains] level,
//     else may (RFC 8689 section 5). Without the right the header is ignored, and said so.
//  4. Sender mode: tls-only and tls-or-escrow never send in the clear (floor encrypt), unless
//     TLS-Required: No was honoured; escrow-always escrows everything; opportunistic adds nothing.
// Actions:
//  escrow-always: escrow.
//  REQUIRETLS with an unauthenticated MX set: tls-or-escrow escrows, the others bounce (5.7.30).
//  Before an attempt: level <= may -> deliver (plaintext allowed). A source other than the sender
//  mode requires TLS -> deliver at level (partial TLS: only the TLS hosts). Else (only the sender
//  mode requires TLS): TLS-capable -> deliver at encrypt; partial -> deliver at encrypt via the TLS
//  hosts only; no TLS -> escrow (tls-or-escrow) or bounce 5.7.4 (tls-only); unknown -> defer and
//  probe.
//  After a TLS failure: level <= may (lowered by override or TLS-Required: No) -> deliver;
//  tls-or-escrow -> defer, escrow once escrow_after has passed since the first failure (or the
//  queue lifetime is reached); tls-only and opportunistic -> defer, bounce (5.7.5) at the queue
//  lifetime. Never plaintext.
Decision decide(const PolicyInputs& in, const Situation& situation, std::chrono::system_clock::time_point now);

// The stricter of two levels (the sources combine by it; only src/policy combines levels).
inline tls::Level strictest(tls::Level a, tls::Level b) { return a < b ? b : a; }

// The static level for domain from [policy.domains] (exact, lower-case match), if any.
std::optional<tls::Level> static_level(const config::PolicyConfig& cfg, std::string_view domain);

}  // namespace mailward::policy
