// The ONE place where every delivery outcome is classified (docs/design.md; Postfix smtp_trouble):
// delivered, temporary (retry later), permanent (bounce), or tls_policy (the required TLS could not
// be had: never sent, deferred and retried; later the sender mode may escrow). Each result keeps
// the remote reply or the local reason and the RFC 3463 status for DSNs and logs.
#pragma once

#include <optional>
#include <string>

#include "common/result.hpp"
#include "delivery/smtp_client.hpp"
#include "smtp/reply.hpp"

namespace mailward::delivery {

enum class Outcome { delivered, temporary, permanent, tls_policy };
std::string_view to_string(Outcome o);

struct Classified {
    Outcome outcome = Outcome::temporary;
    std::string status;       // RFC 3463 "5.1.1"
    std::string diagnostic;   // "smtp; 550 5.1.1 no such user" or "" for local reasons
    std::string reason;       // one line for a person: what happened and where
    bool try_next_host = false;  // the failure belongs to this host: another MX may do better
};

// Why a host or address was not used at all (decided here, before any connection).
enum class HopRefusal {
    none,
    address_lookup_failed,  // secure MX set, an A/AAAA lookup failed: RFC 7672 2.1.1 (temporary)
    loops_back,             // loopback or our own listener: "mail loops back to myself" (permanent)
};

// What one attempt produced for one recipient (or for all of them, when the failure came first).
struct Evidence {
    HopRefusal refusal = HopRefusal::none;    // with host and route_detail (what was found)
    error_code route_error;                   // DNS / routing failure (RouteErrc or DnsErrc)
    std::string route_detail;
    std::optional<SessionError> session;      // connection- or transaction-level failure
    std::optional<RecipientResult> recipient; // a per-recipient reply
    tls::Level required = tls::Level::may;
    std::string host;                         // MX host name, for the reason text
};

Classified classify(const Evidence& e);

}  // namespace mailward::delivery
