// Where mail for a recipient domain goes (RFC 5321 section 5.1): the MX records by preference,
// equal preferences shuffled, the implicit MX (the domain's own A/AAAA) when there is no MX
// record, the null MX of RFC 7505 as a permanent failure, and every IPv4 and IPv6 address of every
// host. An address literal domain ("[192.0.2.1]") routes to that address. DNS answers are untrusted.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "dns/resolver.hpp"

namespace mailward::delivery {

struct Hop {
    std::string host;                    // MX exchange (lower case) or the domain for implicit MX
    unsigned preference = 0;
    std::vector<std::string> addresses;  // empty when the host's lookups failed
    bool addresses_secure = false;       // every address answer was DNSSEC-secure
    std::string error;                   // why addresses is empty, for the log
    bool temporary_error = false;
};

struct Route {
    std::string domain;
    std::vector<Hop> hops;               // in the order to try
    bool mx_secure = false;              // the MX answer (or its absence) was DNSSEC-secure
    bool implicit_mx = false;
};

enum class RouteErrc {
    ok = 0,
    null_mx = 1,        // RFC 7505: the domain accepts no mail (permanent, 5.1.10)
    no_such_domain,     // NXDOMAIN (permanent, 5.1.2)
    no_addresses,       // every host lacks addresses and no lookup failed temporarily (permanent, 5.4.4)
    dns_temporary,      // SERVFAIL, timeout, bogus (temporary, 4.4.3)
};
const boost::system::error_category& route_category() noexcept;
inline error_code make_error_code(RouteErrc e) noexcept { return {static_cast<int>(e), route_category()}; }

// Resolves domain. On failure detail says why for a person (with the DNS error).
boost::asio::awaitable<Result<Route>> resolve_route(dns::Resolver& resolver, std::string domain, std::mt19937& rng,
                                                    std::string& detail);

// Orders MX records: by preference, equal preferences shuffled with rng (RFC 5321 5.1).
std::vector<dns::MxRecord> order_mx(std::vector<dns::MxRecord> records, std::mt19937& rng);

}  // namespace mailward::delivery

namespace boost::system {
template <>
struct is_error_code_enum<mailward::delivery::RouteErrc> : std::true_type {};
}  // namespace boost::system
