// Which MX hosts of a domain may be used under a Decision: what is known of each host's TLS,
// the domain's capability (all / some / none of its hosts do TLS), MTA-STS mx pattern matching
// (RFC 8461 section 4.1) and the filter that keeps non-TLS hosts away from senders who must not
// use them (issue 4, item 6). Pure; host names are compared as given (lower case, no final dot).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/decide.hpp"
#include "policy/learned.hpp"
#include "tls/level.hpp"

namespace mailward::policy {

// One MX host and the level it was last seen to meet (the weakest over its addresses).
struct MxFact {
    std::string host;
    std::optional<tls::Level> level;  // nullopt: not probed (e.g. a new MX host)
};

// Groups per-address evidence by host, in order of first appearance; a host's level is the
// weakest of its addresses (an unknown level name counts as none).
std::vector<MxFact> facts_from_evidence(const std::vector<MxEvidence>& evidence);

// tls_capable: every host meets encrypt; no_tls: none does; partial_tls: some do and some are
// known not to; unknown: no hosts, or any host not probed.
DomainCapability capability_of(std::span<const MxFact> hosts);

// RFC 8461 section 4.1: "mail.example.com" matches itself only (case-insensitive); "*.example.com"
// matches exactly one extra leftmost label ("a.example.com", not "example.com" nor
// "a.b.example.com").
bool mx_pattern_matches(std::string_view pattern, std::string_view host);

// The hosts the delivery may try, in the given (MX preference) order: hosts not matching any of
// d.mx_patterns are dropped (when there are patterns); with d.only_tls_hosts, hosts known to meet
// less than max(d.level, encrypt) are dropped too (unprobed hosts stay: the session enforces the
// level, so they cannot receive plaintext). Empty: no host may be used; treat as a TLS failure.
std::vector<std::string> usable_hosts(std::span<const MxFact> hosts, const Decision& d);

}  // namespace mailward::policy
