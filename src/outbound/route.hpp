// Where mail for a recipient domain goes (RFC 5321 section 5.1): the MX records by preference,
// equal preferences shuffled, the implicit MX (the domain's own A/AAAA) when there is no MX
// record, the null MX of RFC 7505 as a permanent failure, and every IPv4 and IPv6 address of every
// host. An address literal domain ("[192.0.2.1]") routes to that address. DNS answers are untrusted.
// Also the loop check (Postfix's "mail loops back to myself"): an address that is loopback, "this
// host", or one of our own listeners is no place to deliver to.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "config/config.hpp"
#include "dns/resolver.hpp"

namespace mailward::outbound {

struct Hop {
    std::string host;  // MX exchange (lower case) or the domain for implicit MX
    unsigned preference = 0;
    std::vector<std::string> addresses;  // empty when the host's lookups failed
    bool addresses_secure = false;       // every address answer was DNSSEC-secure
    std::string error;                   // why addresses is empty, or which lookup failed, for the log
    bool temporary_error = false;
    // An A or AAAA lookup failed (SERVFAIL, timeout, bogus) though the other may have answered: in
    // a DNSSEC-secure MX set the host is then unusable for this attempt (RFC 7672 2.1.1), never
    // used with the addresses that did resolve (that would skip TLSA, a silent DANE downgrade).
    bool address_lookup_failed = false;
};

struct Route {
    std::string domain;
    std::vector<Hop> hops;   // in the order to try
    bool mx_secure = false;  // the MX answer (or its absence) was DNSSEC-secure
    bool implicit_mx = false;
    // Set for a [[delivery.routes]] next hop (the engine fills them in): its name, its port, and
    // the credentials for AUTH (the password as serve read it from the route's file).
    std::string via;
    unsigned short port = 0;  // 0: [delivery] port
    std::string auth_user;
    std::string auth_password;
    std::string bind_address;   // local IPv4 address of its connections; "" = any
    std::string bind_address6;  // local IPv6 address; "" = any
};

enum class RouteErrc {
    ok = 0,
    null_mx = 1,     // RFC 7505: the domain accepts no mail (permanent, 5.1.10)
    no_such_domain,  // NXDOMAIN (permanent, 5.1.2)
    no_addresses,    // every host lacks addresses and no lookup failed temporarily (permanent, 5.4.4)
    dns_temporary,   // SERVFAIL, timeout, bogus (temporary, 4.4.3)
};
const boost::system::error_category& route_category() noexcept;
inline error_code make_error_code(RouteErrc e) noexcept { return {static_cast<int>(e), route_category()}; }

// Resolves domain. On failure detail says why for a person (with the DNS error).
boost::asio::awaitable<Result<Route>> resolve_route(dns::Resolver& resolver, std::string domain, std::mt19937& rng,
                                                    std::string& detail);

// The next hop of a configured route ([[delivery.routes]], config::RouteConfig): with mx_lookup
// the MX records of host as for a domain (resolve_route); without, host's own A and AAAA records (an
// IP literal as it is), mx_secure then meaning those answers were DNSSEC-secure. route.domain is
// host. The port is the route's, not part of the Route.
boost::asio::awaitable<Result<Route>> resolve_next_hop(dns::Resolver& resolver, const std::string& host, bool mx_lookup,
                                                       std::mt19937& rng, std::string& detail);

// Where mail to an address would go back to this machine ([delivery] allow_loopback_mx).
enum class LoopKind {
    none,          // elsewhere
    loopback,      // 127.0.0.0/8, ::1, 0.0.0.0/8, ::, and their IPv4-mapped forms
    own_listener,  // one of our listeners (address and port), or an address of this host when a
                   // listener on that port is bound to the wildcard address
};
std::string_view to_string(LoopKind k);

struct OwnAddresses {
    std::vector<config::Endpoint> listeners;             // submission listen, tls_listen, the escrow portal
    std::vector<std::vector<unsigned char>> interfaces;  // this host's addresses (getifaddrs), 4 or 16 bytes
};
// From the configuration, with this host's interface addresses (getifaddrs; none on failure).
OwnAddresses own_addresses(const config::Config& cfg);

// How address (an IP literal) at port relates to this host. The own-listener check comes first.
// Text that is no IP address is none (the connect fails on its own).
LoopKind loop_kind(std::string_view address, unsigned short port, const OwnAddresses& own);

// Orders MX records: by preference, equal preferences shuffled with rng (RFC 5321 5.1).
std::vector<dns::MxRecord> order_mx(std::vector<dns::MxRecord> records, std::mt19937& rng);

}  // namespace mailward::outbound

namespace boost::system {
template <>
struct is_error_code_enum<mailward::outbound::RouteErrc> : std::true_type {};
}  // namespace boost::system
