// Probing every MX address of a domain for TLS: see probe.hpp.
#include "probe/probe.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <random>

#include "outbound/route.hpp"

namespace mailward::probe {
namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

// Each step of a legacy probe waits at most this long (they are extra connections to a host that
// already answered the main probe).
constexpr std::chrono::seconds kLegacyTimeout{10};

bool looks_tampered(const std::vector<std::string>& ehlo) {
    for (std::size_t i = 1; i < ehlo.size(); ++i) {
        const auto& l = ehlo[i];
        if (l.size() >= 4 && l.find_first_not_of("Xx") == std::string::npos) return true;
        if (l.rfind("XXXX", 0) == 0) return true;
    }
    return false;
}

// The strongest level the facts meet, and what stops the next one.
tls::Level best_level(const HostReport& h, std::string& why_not) {
    const tls::Level order[] = {tls::Level::dane, tls::Level::verify, tls::Level::encrypt};
    std::string why_first;
    for (auto l : order) {
        if (l == tls::Level::dane && !h.tls.dane_checked) continue;
        // RFC 7672 2.2: published TLSA that does not match allows no fallback to PKIX checks.
        if (l == tls::Level::verify && h.tls.dane_checked && !h.tls.dane_matched) continue;
        std::string why;
        if (tls::meets(l, h.tls, why)) {
            why_not = why_first;
            return l;
        }
        if (why_first.empty()) why_first = std::string(tls::to_string(l)) + ": " + why;
    }
    why_not = h.starttls_offered ? why_first : "STARTTLS not offered";
    return tls::Level::may;
}

// The capped contexts of the legacy probes, made once per probe_domain; an error instead of a
// context when this OpenSSL cannot offer the version (every address then says "unknown").
struct LegacyContexts {
    Result<tls::ClientContext> tls10 = common::Errc::unsupported;
    Result<tls::ClientContext> tls11 = common::Errc::unsupported;
    std::string error10, error11;
};

// One legacy probe: a fresh connection at level may (nothing is required of the chain), offering
// only the capped version; bounded by shorter timeouts than a delivery's.
asio::awaitable<LegacyCheck> probe_legacy(outbound::Target t, std::shared_ptr<const LegacyContexts> all,
                                          tls::ProtocolCap cap, outbound::ClientTimeouts to) {
    LegacyCheck out;
    const auto& ctx = cap == tls::ProtocolCap::tls1_0 ? all->tls10 : all->tls11;
    if (!ctx) {
        out.result = Legacy::unknown;
        out.detail = cap == tls::ProtocolCap::tls1_0 ? all->error10 : all->error11;
        co_return out;
    }
    t.level = tls::Level::may;
    t.tlsa.clear();
    to.connect = std::min<std::chrono::milliseconds>(to.connect, kLegacyTimeout);
    to.greeting = std::min<std::chrono::milliseconds>(to.greeting, kLegacyTimeout);
    to.command = std::min<std::chrono::milliseconds>(to.command, kLegacyTimeout);
    auto ex = co_await asio::this_coro::executor;
    auto [client, err] = co_await outbound::SmtpClient::connect(ex, t, *ctx, to);
    if (client) {
        if (client->tls_facts().established) {
            out.result = Legacy::accepted;
            out.detail = client->tls_facts().protocol + " " + client->tls_facts().cipher;
        } else {
            out.result = Legacy::unknown;  // at may, a STARTTLS refused this time goes on in plaintext
            out.detail = "STARTTLS not available on the second connection";
        }
        co_await client->quit();
    } else if (err && err->tls && err->tls->established) {
        out.result = Legacy::accepted;
        out.detail = err->tls->protocol + " " + err->tls->cipher;
    } else if (err && err->stage == outbound::Stage::tls_handshake && err->ec != asio::error::timed_out) {
        out.result = Legacy::refused;  // an alert or a closed connection in answer to the ClientHello
        out.detail = err->detail;
    } else {
        out.result = Legacy::unknown;
        out.detail = err ? std::string(outbound::to_string(err->stage)) + ": " +
                               (err->reply ? err->reply->summary() : err->detail)
                         : "no answer";
    }
    co_return out;
}

asio::awaitable<HostReport> probe_address(HostReport h, std::vector<dns::TlsaRecord> tlsa, tls::ClientContext ctx,
                                          ProbeOptions opts, std::shared_ptr<const LegacyContexts> legacy_ctx) {
    outbound::Target t;
    t.mx_host = h.host;
    t.address = h.address;
    t.port = opts.port;
    t.level = tlsa.empty() ? tls::Level::may : tls::Level::dane;
    t.tlsa = tlsa;
    t.helo_name = opts.helo_name;
    auto ex = co_await asio::this_coro::executor;
    auto [client, err] = co_await outbound::SmtpClient::connect(ex, t, ctx, opts.timeouts);
    if (client) {
        h.connected = true;
        h.starttls_offered = client->starttls_offered();
        h.ehlo = client->ehlo_lines();
        h.tls = client->tls_facts();
        co_await client->quit();
    } else if (err) {
        if (err->tls) {  // the session was up; only the level failed
            h.connected = true;
            h.starttls_offered = true;
            h.tls = *err->tls;
        } else {
            h.error = std::string(outbound::to_string(err->stage)) + ": " +
                      (err->reply ? err->reply->summary() : err->detail);
        }
    }
    h.ehlo_tampered = looks_tampered(h.ehlo);
    if (legacy_ctx && h.starttls_offered) {
        // Both versions at once, each on its own connection.
        auto [v10, v11] = co_await (probe_legacy(t, legacy_ctx, tls::ProtocolCap::tls1_0, opts.timeouts) &&
                                    probe_legacy(t, legacy_ctx, tls::ProtocolCap::tls1_1, opts.timeouts));
        h.tls10 = std::move(v10);
        h.tls11 = std::move(v11);
    }
    h.level = h.connected ? best_level(h, h.why_not_higher) : tls::Level::none;
    if (!h.connected) h.why_not_higher = h.error;
    co_return h;
}

}  // namespace

std::string_view to_string(Legacy l) {
    switch (l) {
        case Legacy::accepted: return "accepted";
        case Legacy::refused: return "refused";
        case Legacy::unknown: return "unknown";
        case Legacy::not_probed: break;
    }
    return "not probed";
}

std::vector<std::string> legacy_protocols(const HostReport& h) {
    std::vector<std::string> out;
    if (h.tls10.result == Legacy::accepted) out.emplace_back(tls::to_string(tls::ProtocolCap::tls1_0));
    if (h.tls11.result == Legacy::accepted) out.emplace_back(tls::to_string(tls::ProtocolCap::tls1_1));
    return out;
}

asio::awaitable<DomainReport> probe_domain(dns::Resolver& resolver, tls::ClientContext tls, std::string domain,
                                           ProbeOptions opts) {
    DomainReport rep;
    rep.domain = domain;
    std::mt19937 rng(std::random_device{}());
    std::string detail;
    auto route = co_await outbound::resolve_route(resolver, domain, rng, detail);
    if (!route) {
        rep.error = detail.empty() ? route.error().message() : detail;
        rep.temporary_error = route.error() == outbound::RouteErrc::dns_temporary;
        co_return rep;
    }
    rep.mx_secure = route->mx_secure;
    rep.implicit_mx = route->implicit_mx;
    auto ex = co_await asio::this_coro::executor;
    std::shared_ptr<LegacyContexts> legacy;
    if (opts.legacy) {
        // Trust does not matter for these handshakes (only whether they complete): no ca_file.
        legacy = std::make_shared<LegacyContexts>();
        legacy->tls10 = tls::make_client_context({}, legacy->error10, tls::ProtocolCap::tls1_0);
        legacy->tls11 = tls::make_client_context({}, legacy->error11, tls::ProtocolCap::tls1_1);
    }
    std::vector<asio::awaitable<HostReport>> jobs;
    std::vector<HostReport> unresolved;
    for (const auto& hop : route->hops) {
        std::vector<dns::TlsaRecord> tlsa;
        bool tlsa_secure = false;
        if (opts.dane && route->mx_secure && hop.addresses_secure) {
            std::string name = "_" + std::to_string(opts.port) + "._tcp." + hop.host;
            auto t = co_await resolver.tlsa(name);
            if (t && t->security == dns::Security::secure) {
                tlsa_secure = true;
                for (const auto& r : t->records) {
                    if (r.usage == 2 || r.usage == 3) tlsa.push_back(r);
                }
            }
        }
        if (hop.addresses.empty()) {
            HostReport h;
            h.host = hop.host;
            h.preference = hop.preference;
            h.error = hop.error;
            h.why_not_higher = hop.error;
            unresolved.push_back(h);
            continue;
        }
        for (const auto& addr : hop.addresses) {
            HostReport h;
            h.host = hop.host;
            h.preference = hop.preference;
            h.address = addr;
            h.tlsa_secure = tlsa_secure;
            h.tlsa_records = tlsa.size();
            jobs.push_back(probe_address(h, tlsa, tls, opts, legacy));
        }
    }
    // Every address at once; each job is bounded by the client timeouts.
    std::vector<std::shared_ptr<std::optional<HostReport>>> slots;
    std::vector<std::shared_ptr<asio::steady_timer>> done;
    for (auto& job : jobs) {
        auto slot = std::make_shared<std::optional<HostReport>>();
        auto t = std::make_shared<asio::steady_timer>(ex, asio::steady_timer::time_point::max());
        slots.push_back(slot);
        done.push_back(t);
        asio::co_spawn(ex, std::move(job), [slot, t](std::exception_ptr e, HostReport r) {
            if (!e) *slot = std::move(r);
            t->cancel();
        });
    }
    for (std::size_t i = 0; i < done.size(); ++i) {
        if (!*slots[i]) {
            boost::system::error_code ec;
            co_await done[i]->async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        if (*slots[i]) rep.hosts.push_back(std::move(**slots[i]));
    }
    for (auto& h : unresolved) rep.hosts.push_back(std::move(h));
    const HostReport* weakest = nullptr;  // the first host with the lowest level, named in the report
    for (const auto& h : rep.hosts) {
        if (!weakest || h.level < weakest->level) weakest = &h;
    }
    if (weakest) rep.weakest = weakest->host + (weakest->address.empty() ? "" : " [" + weakest->address + "]");
    co_return rep;
}

}  // namespace mailward::probe
