// Gathering the facts policy::plan() takes for one destination domain: the route (RFC 5321
// section 5, MX hosts in order, DNSSEC status), what the store knows (learned level with per-MX
// evidence, the admin override, the sender's right to "TLS-Required: No", RFC 8689 section 5), a
// probe when one is due, the MTA-STS policy (RFC 8461) and the preload list; and, for the hosts a
// plan will use, the TLSA answers at _port._tcp.<host> (RFC 7672 2.2). Nothing here decides.
#include <algorithm>
#include <spdlog/spdlog.h>

#include "common/blocking.hpp"
#include "common/gcc_wrestrict.hpp"
#include "delivery/engine_impl.hpp"
#include "policy/facts.hpp"
#include "policy/tls_optional.hpp"

namespace mailward::delivery {
namespace asio = boost::asio;
using Clock = std::chrono::system_clock;

namespace {

// What the store knows about a domain and the message's sender, read in one blocking step.
struct Known {
    bool ok = true;
    std::string error;
    policy::StoredDestination stored;
    policy::TlsOptionalRight tls_optional;  // when the message has "TLS-Required: No"
};

// The route as plan() sees it (hosts in the same order, index for index).
policy::RouteFacts route_facts(const Route& route) {
    policy::RouteFacts f;
    f.mx_secure = route.mx_secure;
    for (const auto& hop : route.hops) {
        policy::MxHostFacts h;
        h.host = hop.host;
        h.has_addresses = !hop.addresses.empty();
        h.address_lookup_failed = hop.address_lookup_failed;
        h.addresses_secure = hop.addresses_secure;
        h.error = hop.error;
        f.hosts.push_back(std::move(h));
    }
    return f;
}

}  // namespace

asio::awaitable<std::optional<Gathered>> Engine::Impl::gather_facts(const store::Envelope& env, const std::string& body,
                                                                    const std::string& domain,
                                                                    const std::vector<std::size_t>& idxs,
                                                                    Outcomes& out) {
    Gathered g;
    g.now = Clock::now();
    g.reading.domain = domain;
    g.message.mode = config::parse_sender_mode(env.sender_mode).value_or(cfg.policy.default_mode);
    g.message.requiretls = env.requiretls;
    g.message.received_at = env.received_at;
    g.message.tls_required_no = policy::has_tls_required_no(body);

    // 1. The route: MX hosts in order, or the next hop of a [[delivery.routes]] entry.
    std::string detail;
    const config::RouteConfig* via = config::find_route(cfg.delivery.routes, domain);
    std::optional<config::RouteConfig> route_cfg;
    if (via) route_cfg = *via;  // cfg may be replaced by a reload while this coroutine waits
    // (No co_await inside ?: - g++ 12 mis-handles it.)
    Result<Route> route = outbound::RouteErrc::dns_temporary;
    if (route_cfg) {
        route = co_await resolve_next_hop(resolver, route_cfg->host, route_cfg->mx_lookup, rng, detail);
    } else {
        route = co_await resolve_route(resolver, domain, rng, detail);
    }
    if (!route && route_cfg) detail = "route " + route_cfg->name + ": " + detail;
    if (!route) {
        Evidence ev;
        ev.route_error = route.error();
        ev.route_detail = detail;
        auto c = classify(ev);
        const std::string via = route_cfg ? route_cfg->name : std::string();
        for (auto i : idxs) {
            log_attempt(env, i, via, "", "", tls::Level::may, {}, nullptr, c);
            out[i] = RcptOutcome{c};
            out[i].route = via;
        }
        co_return std::nullopt;
    }
    g.route = std::move(*route);
    g.route.bind_address = cfg.delivery.bind_address;
    g.route.bind_address6 = cfg.delivery.bind_address6;
    if (route_cfg) {
        if (!route_cfg->bind_address.empty()) g.route.bind_address = route_cfg->bind_address;
        if (!route_cfg->bind_address6.empty()) g.route.bind_address6 = route_cfg->bind_address6;
        g.route.via = route_cfg->name;
        g.route.port = route_cfg->port;
        g.route.auth_user = route_cfg->auth_user;
        if (auto it = route_passwords.find(route_cfg->name); it != route_passwords.end())
            g.route.auth_password = it->second;
    }
    g.reading.route = route_facts(g.route);

    // 2. What the store knows. The sender's right is read at each attempt: an administrator who
    // takes it back stops it for messages already queued.
    auto& policy_store = store.policy();
    auto& users = store.users();
    const bool tls_required_no = g.message.tls_required_no;
    const bool trusted_may = cfg.policy.tls_optional_trusted_networks;
    const auto now = g.now;
    auto load = [&policy_store, &users, &domain, &env, tls_required_no, trusted_may, now]() {
        Known k;
        if (tls_required_no) {
            std::optional<bool> account;
            if (!env.auth_user.empty()) {
                auto u = users.get(env.auth_user);
                if (u) {
                    account = u->allow_tls_optional;
                } else if (u.error() != common::Errc::not_found) {
                    k.ok = false;
                    k.error = u.error().message();
                    return k;
                }
            }
            k.tls_optional = policy::tls_optional_right(env.auth_user, account, trusted_may);
        }
        auto s = policy::load_destination(policy_store, domain, now);
        if (!s) {
            k.ok = false;
            k.error = s.error().message();
            return k;
        }
        k.stored = std::move(*s);
        return k;
    };
    auto known = co_await common::run_blocking<Known>(blocking, load);
    if (!known.ok) {
        spdlog::error("policy: cannot read what is known of {}: {}", domain, known.error);
        const auto c = classify_store_unreadable(known.error);
        for (auto i : idxs) {
            log_attempt(env, i, g.route.via, "", "", tls::Level::encrypt, {}, nullptr, c);
            out[i] = RcptOutcome{c};
            out[i].route = g.route.via;
        }
        co_return std::nullopt;
    }
    g.reading.stored = std::move(known.stored);
    g.message.tls_optional = std::move(known.tls_optional);

    // 3. Learning: probe every MX on first contact of a sender who must not go in the clear, and
    // again when the last probe is stale (policy::probe_due()).
    // Not for a routed domain: its mail goes to the next hop, whose TLS is checked on each session,
    // and the domain's own MX hosts may not even be reachable from here.
    if (const auto why = policy::probe_due(g.reading.stored.learned, g.message.mode, g.now);
        !why.empty() && !route_cfg) {
        g.reading.probe_ran = co_await probe_domain(domain, why.c_str(), g.reading.stored);
        if (g.reading.probe_ran) g.now = Clock::now();
    }

    // 4. MTA-STS and the preload list.
    if (mta_sts && cfg.policy.mta_sts && !domain.empty() && domain.front() != '[') {
        auto look = co_await mta_sts->get(domain, g.now);
        g.reading.mta_sts = policy::to_fact(look);
    }
    g.reading.preload = preload ? &*preload : nullptr;
    co_return g;
}

asio::awaitable<void> Engine::Impl::gather_tlsa(Gathered& g, const std::vector<std::string>& hosts) {
    for (auto& h : g.reading.route.hosts) {
        if (std::find(hosts.begin(), hosts.end(), h.host) == hosts.end()) continue;
        if (h.tlsa.state != policy::TlsaFact::State::not_looked_up) continue;
        MAILWARD_GCC_WRESTRICT_OFF  // GCC bug 105651: "_" + a temporary string
        std::string name = "_" + std::to_string(g.route.port ? g.route.port : cfg.delivery.port) + "._tcp." + h.host;
        MAILWARD_GCC_WRESTRICT_ON
        auto t = co_await resolver.tlsa(name);
        h.tlsa = policy::tlsa_fact(t);
    }
}

}  // namespace mailward::delivery
