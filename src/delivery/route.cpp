// MX routing (RFC 5321 5.1, RFC 7505 null MX): see route.hpp.
#include "delivery/route.hpp"

#include <algorithm>

namespace mailward::delivery {
namespace {

class RouteCategory final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "mailward.route"; }
    std::string message(int ev) const override {
        switch (static_cast<RouteErrc>(ev)) {
            case RouteErrc::ok: return "ok";
            case RouteErrc::null_mx: return "the domain accepts no mail (null MX, RFC 7505)";
            case RouteErrc::no_such_domain: return "the recipient domain does not exist";
            case RouteErrc::no_addresses: return "no mail server of the domain has an address";
            case RouteErrc::dns_temporary: return "temporary DNS failure";
        }
        return "unknown route error";
    }
};

// Resolves A then AAAA for hop.host into hop; a name without either gets an error text.
boost::asio::awaitable<void> resolve_host(dns::Resolver& resolver, Hop& hop) {
    std::string host = hop.host;
    auto a = co_await resolver.a(host);
    auto aaaa = co_await resolver.aaaa(host);
    bool secure = true;
    std::string errors;
    for (auto* r : {&a, &aaaa}) {
        if (r->has_value()) {
            for (auto& addr : (*r)->addresses) hop.addresses.push_back(addr);
            if ((*r)->security != dns::Security::secure) secure = false;
        } else {
            secure = false;
            if (dns::is_temporary(r->error())) hop.temporary_error = true;
            if (!errors.empty()) errors += "; ";
            errors += (r == &a ? "A: " : "AAAA: ") + r->error().message();
        }
    }
    hop.addresses_secure = secure && !hop.addresses.empty();
    if (hop.addresses.empty()) hop.error = errors.empty() ? "no A or AAAA records" : errors;
}

bool is_ip_literal(const std::string& d) { return d.size() > 2 && d.front() == '[' && d.back() == ']'; }

}  // namespace

const boost::system::error_category& route_category() noexcept {
    static const RouteCategory c;
    return c;
}

std::vector<dns::MxRecord> order_mx(std::vector<dns::MxRecord> records, std::mt19937& rng) {
    std::shuffle(records.begin(), records.end(), rng);  // then a stable sort keeps ties shuffled
    std::stable_sort(records.begin(), records.end(),
                     [](const dns::MxRecord& a, const dns::MxRecord& b) { return a.preference < b.preference; });
    return records;
}

boost::asio::awaitable<Result<Route>> resolve_route(dns::Resolver& resolver, std::string domain, std::mt19937& rng,
                                                    std::string& detail) {
    Route route;
    route.domain = domain;
    if (is_ip_literal(domain)) {
        std::string addr = domain.substr(1, domain.size() - 2);
        if (addr.rfind("IPv6:", 0) == 0 || addr.rfind("ipv6:", 0) == 0) addr = addr.substr(5);
        route.hops.push_back(Hop{domain, 0, {addr}, false, {}, false});
        co_return route;
    }
    auto mx = co_await resolver.mx(domain);
    if (!mx) {
        detail = "MX lookup for " + domain + ": " + mx.error().message();
        if (mx.error() == dns::DnsErrc::nxdomain) co_return RouteErrc::no_such_domain;
        co_return RouteErrc::dns_temporary;
    }
    route.mx_secure = mx->security == dns::Security::secure;
    if (mx->records.empty()) {
        // RFC 5321 5.1: no MX records: the domain itself is the implicit MX.
        route.implicit_mx = true;
        route.hops.push_back(Hop{domain, 0, {}, false, {}, false});
    } else {
        for (const auto& r : mx->records) {
            if (r.exchange.empty()) {
                // RFC 7505 3: a null MX is the only MX record; with others it is ignored.
                if (mx->records.size() == 1) {
                    detail = domain + " publishes a null MX: it accepts no mail";
                    co_return RouteErrc::null_mx;
                }
            }
        }
        for (const auto& r : order_mx(mx->records, rng)) {
            if (r.exchange.empty()) continue;
            route.hops.push_back(Hop{r.exchange, r.preference, {}, false, {}, false});
        }
    }
    bool any_address = false, any_temporary = false;
    for (auto& hop : route.hops) {
        co_await resolve_host(resolver, hop);
        any_address = any_address || !hop.addresses.empty();
        any_temporary = any_temporary || hop.temporary_error;
    }
    if (!any_address) {
        detail = "no address for any mail server of " + domain;
        for (const auto& hop : route.hops) detail += "; " + hop.host + ": " + hop.error;
        co_return any_temporary ? RouteErrc::dns_temporary : RouteErrc::no_addresses;
    }
    co_return route;
}

}  // namespace mailward::delivery
