// The ONE place where every delivery outcome is classified (docs/design.md; Postfix smtp_trouble):
// delivered, temporary (retry later), permanent (bounce), or tls_policy (the required TLS could not
// be had: never sent, deferred and retried; later the sender mode may escrow). Each result keeps
// the remote reply or the local reason and the RFC 3463 status for DSNs and logs; no other code
// makes up a status (the SMTP client names its own refusals, outbound::Refusal, and they get theirs
// here). Also which incident kind a TLS failure stands for.
#pragma once

#include <optional>
#include <string>

#include "common/result.hpp"
#include "outbound/smtp_client.hpp"
#include "policy/decide.hpp"
#include "smtp/reply.hpp"
#include "store/policy_store.hpp"

namespace mailward::delivery {

enum class Outcome { delivered, temporary, permanent, tls_policy };
std::string_view to_string(Outcome o);

struct Classified {
    Outcome outcome = Outcome::temporary;
    std::string status;          // RFC 3463 "5.1.1"
    std::string diagnostic;      // "smtp; 550 5.1.1 no such user" or "" for local reasons
    std::string reason;          // one line for a person: what happened and where
    bool try_next_host = false;  // the failure belongs to this host: another MX may do better
};

// Why a host or address was not used at all (decided here, before any connection).
enum class HopRefusal {
    none,
    address_lookup_failed,  // secure MX set, an A/AAAA lookup failed: RFC 7672 2.1.1 (temporary)
    loops_back,             // loopback or our own listener: "mail loops back to myself" (permanent)
    no_addresses,           // the host name has no usable address (temporary; route_detail says why)
    tlsa_lookup_failed,     // secure MX set, the TLSA lookup failed (bogus, SERVFAIL): may hide DANE
};

// What one attempt produced for one recipient (or for all of them, when the failure came first).
struct Evidence {
    HopRefusal refusal = HopRefusal::none;  // with host and route_detail (what was found)
    error_code route_error;                 // DNS / routing failure (RouteErrc or DnsErrc)
    std::string route_detail;
    std::optional<outbound::SessionError> session;       // connection- or transaction-level failure
    std::optional<outbound::RecipientResult> recipient;  // a per-recipient reply
    tls::Level required = tls::Level::may;
    std::string host;  // MX host name, for the reason text
};

Classified classify(const Evidence& e);

// The policy's side, before any connection and after a TLS failure (the same table, named).
// The policy store could not be read: the message waits (4.3.0).
Classified classify_store_unreadable(const std::string& error);
// What the plan (policy::plan()) said before the attempts: escrow, bounce or defer; nullopt for deliver.
std::optional<Classified> classify_decision(const policy::Decision& d);
// The decision allows none of the domain's MX hosts at its level (4.7.5).
Classified classify_no_allowed_host(const std::string& domain, const policy::Decision& d);
// No host of the route was tried at all (4.4.1).
Classified classify_unreachable(const std::string& domain);
// A TLS failure (c, outcome tls_policy) and what the sender's mode says after it (`after`):
// escrow and defer keep it tls_policy (the reason says why), bounce makes it permanent.
void classify_after_tls_failure(Classified& c, const policy::Decision& after, bool incident_recorded);
// The status of a DSN for a message given up at the queue lifetime: the last one made permanent.
std::string expired_status(const Classified& last);
// The incident a TLS failure of the SMTP client stands for (by what the client found: TlsFault).
store::IncidentKind incident_kind(const outbound::SessionError& e);

}  // namespace mailward::delivery
