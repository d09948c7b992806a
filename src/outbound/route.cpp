// MX routing (RFC 5321 5.1, RFC 7505 null MX): see route.hpp.
#include "outbound/route.hpp"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cstring>
#include <ifaddrs.h>
#include <netinet/in.h>

namespace mailward::outbound {
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
            if (dns::is_temporary(r->error())) {
                hop.temporary_error = true;
                hop.address_lookup_failed = true;
            }
            if (!errors.empty()) errors += "; ";
            errors += (r == &a ? "A: " : "AAAA: ") + r->error().message();
        }
    }
    hop.addresses_secure = secure && !hop.addresses.empty();
    if (hop.addresses.empty()) hop.error = errors.empty() ? "no A or AAAA records" : errors;
    else if (hop.address_lookup_failed) hop.error = errors;
}

using Bytes = std::vector<unsigned char>;

// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as its 4 bytes; others unchanged.
Bytes unmapped(Bytes ip) {
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (ip.size() == 16 && std::memcmp(ip.data(), kMapped, 12) == 0) return Bytes(ip.begin() + 12, ip.end());
    return ip;
}

bool is_loopback(const Bytes& ip) {
    if (ip.size() == 4) return ip[0] == 127 || ip[0] == 0;  // 127/8 loopback, 0/8 "this host"
    if (ip.size() != 16) return false;
    for (std::size_t i = 0; i < 15; ++i)
        if (ip[i] != 0) return false;
    return ip[15] == 0 || ip[15] == 1;  // :: and ::1
}

bool is_unspecified(const Bytes& ip) {
    for (auto b : ip)
        if (b != 0) return false;
    return true;
}

bool is_ip_literal(const std::string& d) { return d.size() > 2 && d.front() == '[' && d.back() == ']'; }

}  // namespace

const boost::system::error_category& route_category() noexcept {
    static const RouteCategory c;
    return c;
}

std::string_view to_string(LoopKind k) {
    switch (k) {
        case LoopKind::none: return "none";
        case LoopKind::loopback: return "loopback";
        case LoopKind::own_listener: return "own listener";
    }
    return "?";
}

OwnAddresses own_addresses(const config::Config& cfg) {
    OwnAddresses own;
    own.listeners = cfg.submission.listen;
    own.listeners.insert(own.listeners.end(), cfg.submission.tls_listen.begin(), cfg.submission.tls_listen.end());
    if (auto ep = config::parse_endpoint(cfg.escrow.listen)) own.listeners.push_back(*ep);
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) == 0) {
        for (ifaddrs* i = list; i; i = i->ifa_next) {
            if (!i->ifa_addr) continue;
            if (i->ifa_addr->sa_family == AF_INET) {
                const auto* a = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
                const auto* b = reinterpret_cast<const unsigned char*>(&a->sin_addr);
                own.interfaces.emplace_back(b, b + 4);
            } else if (i->ifa_addr->sa_family == AF_INET6) {
                const auto* a = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
                const auto* b = reinterpret_cast<const unsigned char*>(&a->sin6_addr);
                own.interfaces.emplace_back(b, b + 16);
            }
        }
        freeifaddrs(list);
    }
    return own;
}

LoopKind loop_kind(std::string_view address, unsigned short port, const OwnAddresses& own) {
    auto parsed = config::parse_ip(address);
    if (!parsed) return LoopKind::none;
    const Bytes ip = unmapped(*parsed);
    const bool local = is_loopback(ip) || std::any_of(own.interfaces.begin(), own.interfaces.end(),
                                                      [&ip](const Bytes& i) { return unmapped(i) == ip; });
    for (const auto& l : own.listeners) {
        if (l.port != port) continue;
        auto lip = config::parse_ip(l.host);
        if (!lip) continue;
        const Bytes listener = unmapped(*lip);
        if (listener == ip || (is_unspecified(listener) && local)) return LoopKind::own_listener;
    }
    return is_loopback(ip) ? LoopKind::loopback : LoopKind::none;
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
        route.hops.push_back(Hop{domain, 0, {addr}, false, {}, false, false});
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
        route.hops.push_back(Hop{domain, 0, {}, false, {}, false, false});
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
            route.hops.push_back(Hop{r.exchange, r.preference, {}, false, {}, false, false});
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

boost::asio::awaitable<Result<Route>> resolve_next_hop(dns::Resolver& resolver, const std::string& host, bool mx_lookup,
                                                       std::mt19937& rng, std::string& detail) {
    if (mx_lookup) {
        auto route = co_await resolve_route(resolver, host, rng, detail);  // named, as in smtp_client.cpp
        co_return route;
    }
    Route route;
    route.domain = host;
    Hop hop{host, 0, {}, false, {}, false, false};
    boost::system::error_code ec;
    boost::asio::ip::make_address(host, ec);
    if (!ec) {
        hop.addresses.push_back(host);
        route.hops.push_back(std::move(hop));
        co_return route;
    }
    co_await resolve_host(resolver, hop);
    if (hop.addresses.empty()) {
        detail = "next hop " + host + ": " + hop.error;
        co_return hop.temporary_error ? RouteErrc::dns_temporary : RouteErrc::no_addresses;
    }
    route.mx_secure = hop.addresses_secure;
    route.hops.push_back(std::move(hop));
    co_return route;
}

}  // namespace mailward::outbound
