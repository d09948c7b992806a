// The SMTP attempts of one delivery to one domain (RFC 5321 section 5: MX hosts in order, every
// address of each), limited to the hosts the policy allows, at the level it requires, with DANE
// (RFC 7672) per host from secure TLSA answers (a host of a secure MX set whose address lookup
// failed is not used, 2.1.1). Addresses that loop back (loopback unless allowed, our own listeners)
// are never used. Idle connections are pooled by reuse_key() (every input of the connection's
// checks) and reused (Postfix's connection cache). The delivery log gets one line per recipient
// and attempt.
#include <algorithm>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/gcc_wrestrict.hpp"
#include "common/metrics.hpp"
#include "common/timefmt.hpp"
#include "delivery/engine_impl.hpp"

namespace mailward::delivery {
namespace asio = boost::asio;
using Clock = std::chrono::system_clock;

namespace {

constexpr auto kPoolIdle = std::chrono::seconds(2);  // as Postfix's smtp_connection_cache_time_limit

nlohmann::json tls_json(const tls::PeerFacts& f) {
    if (!f.established) return nullptr;
    nlohmann::json chain = nlohmann::json::array();
    for (const auto& c : f.chain) chain.push_back({{"subject", c.subject}, {"issuer", c.issuer}, {"not_after", c.not_after}});
    return {{"protocol", f.protocol},       {"cipher", f.cipher},         {"bits", f.cipher_bits},
            {"forward_secret", f.forward_secret}, {"spki_sha256", f.spki_sha256}, {"chain_valid", f.chain_valid},
            {"name_matched", f.name_matched}, {"verify_error", f.verify_error}, {"dane_matched", f.dane_matched},
            {"chain", chain}};
}

}  // namespace

void Engine::Impl::log_attempt(const store::Envelope& env, std::size_t idx, const std::string& host,
                               const std::string& address, tls::Level level, const std::vector<std::string>& why,
                               const tls::PeerFacts* facts, const Classified& c, std::string_view result) {
    nlohmann::json j = {{"time", common::iso8601(Clock::now())},
                        {"queue_id", env.id},
                        {"recipient", env.recipients[idx].address},
                        {"mx", host},
                        {"address", address},
                        {"required_level", tls::to_string(level)},
                        {"level_reasons", why},
                        {"tls", facts ? tls_json(*facts) : nullptr},
                        {"result", result.empty() ? to_string(c.outcome) : result},
                        {"status", c.status},
                        {"reply", c.diagnostic},
                        {"reason", c.reason}};
    log.write(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    common::metrics::inc("mailward_delivery_attempts_total", "Delivery attempts per recipient, by result.", "result",
                         result.empty() ? to_string(c.outcome) : result);
}

asio::awaitable<std::unique_ptr<SmtpClient>> Engine::Impl::take_idle(const std::string& key) {
    for (;;) {
        auto it = pool.find(key);
        if (it == pool.end()) co_return nullptr;
        auto idle = std::move(it->second);
        pool.erase(it);
        if (std::chrono::steady_clock::now() - idle.since < kPoolIdle) co_return std::move(idle.client);
        co_await idle.client->quit();  // stale: the peer may have closed it already
    }
}

asio::awaitable<void> Engine::Impl::deliver_to(const store::Envelope& env, const std::string& body, const Route& route,
                                               const std::vector<std::size_t>& idxs, Outcomes& out,
                                               const AttemptPlan& plan) {
    std::optional<RcptOutcome> last;  // the most telling failure so far, used if no host takes the mail
    std::optional<RcptOutcome> looped;  // the first address refused as a loop (used if nothing else was tried)
    for (const auto& hop : route.hops) {
        if (std::find(plan.hosts.begin(), plan.hosts.end(), hop.host) == plan.hosts.end()) continue;
        tls::Level hop_level = plan.level;
        std::vector<std::string> hop_why = plan.why;
        std::vector<dns::TlsaRecord> tlsa;
        if (hop.addresses.empty()) {
            Evidence ev;
            ev.refusal = HopRefusal::no_addresses;
            ev.host = hop.host;
            ev.route_detail = hop.error;
            last = RcptOutcome{classify(ev), hop.host};
            continue;
        }
        if (cfg.policy.dane && route.mx_secure && hop.address_lookup_failed) {
            // RFC 7672 2.1.1: a host of a secure MX set whose A or AAAA lookup failed is unusable
            // for this attempt; never used with the addresses that did resolve (no TLSA: a downgrade).
            Evidence ev;
            ev.refusal = HopRefusal::address_lookup_failed;
            ev.host = hop.host;
            ev.route_detail = hop.error;
            auto c = classify(ev);
            for (auto i : idxs) log_attempt(env, i, hop.host, "", hop_level, hop_why, nullptr, c);
            last = RcptOutcome{c, hop.host};
            continue;
        }
        if (cfg.policy.dane && route.mx_secure && hop.addresses_secure) {
            // RFC 7672 2.2: TLSA at _port._tcp.<MX host>, usable only from a secure answer.
            MAILWARD_GCC_WRESTRICT_OFF  // GCC bug 105651: "_" + a temporary string
            std::string name = "_" + std::to_string(cfg.delivery.port) + "._tcp." + hop.host;
            MAILWARD_GCC_WRESTRICT_ON
            auto t = co_await resolver.tlsa(name);
            if (t && t->security == dns::Security::secure) {
                for (const auto& r : t->records) {
                    if (r.usage == 2 || r.usage == 3) tlsa.push_back(r);
                }
                if (!tlsa.empty()) {
                    hop_level = tls::strictest(hop_level, tls::Level::dane);
                    hop_why.push_back("DANE: secure TLSA records for " + hop.host);
                }
            } else if (!t && t.error() != dns::DnsErrc::nxdomain) {
                // A TLSA lookup that fails (bogus, SERVFAIL) may hide DANE: this host is not usable.
                Evidence ev;
                ev.refusal = HopRefusal::tlsa_lookup_failed;
                ev.host = hop.host;
                ev.route_detail = t.error().message();
                const auto c = classify(ev);
                for (auto i : idxs) log_attempt(env, i, hop.host, "", tls::Level::dane, hop_why, nullptr, c);
                last = RcptOutcome{c, hop.host};
                continue;
            }
        }
        for (const auto& addr : hop.addresses) {
            // Loop protection: never to ourselves; to loopback only where the config allows it.
            if (const auto loop = loop_kind(addr, cfg.delivery.port, own);
                loop == LoopKind::own_listener || (loop == LoopKind::loopback && !cfg.delivery.allow_loopback_mx)) {
                Evidence ev;
                ev.refusal = HopRefusal::loops_back;
                ev.host = hop.host;
                ev.route_detail = hop.host + " [" + addr + "]:" + std::to_string(cfg.delivery.port) + " is " +
                                  (loop == LoopKind::own_listener ? "one of mailward's own listeners"
                                                                  : "a loopback address ([delivery] allow_loopback_mx = false)");
                auto c = classify(ev);
                spdlog::warn("delivery: {}: {}", env.id, c.reason);
                for (auto i : idxs) log_attempt(env, i, hop.host, addr, hop_level, hop_why, nullptr, c, "loop");
                if (!looped) looped = RcptOutcome{c, hop.host, addr};
                continue;
            }
            Target target;
            target.mx_host = hop.host;
            target.address = addr;
            target.port = cfg.delivery.port;
            target.level = hop_level;
            target.tlsa = tlsa;
            target.helo_name = cfg.server.hostname;
            if (auto k = plan.known_spki.find(hop.host); k != plan.known_spki.end()) target.known_spki = k->second;
            const std::string key = reuse_key(target, env.requiretls);
            std::unique_ptr<SmtpClient> client = co_await take_idle(key);
            bool reused = client != nullptr;
            for (int round = 0; round < 2; ++round) {
                if (!client) {
                    auto [c, err] = co_await SmtpClient::connect(strand, target, tls, timeouts);
                    if (!c) {
                        Evidence ev;
                        ev.session = err.value_or(SessionError{});
                        ev.required = hop_level;
                        ev.host = hop.host;
                        auto cl = classify(ev);
                        const tls::PeerFacts* facts = ev.session->tls ? &*ev.session->tls : nullptr;
                        for (auto i : idxs) log_attempt(env, i, hop.host, addr, hop_level, hop_why, facts, cl);
                        last = RcptOutcome{cl, hop.host, addr, std::nullopt};
                        if (cl.outcome == Outcome::tls_policy) last->tls_failure = ev.session;
                        break;  // next address
                    }
                    client = std::move(c);
                    reused = false;
                }
                auto tr = co_await client->send(env, idxs, body);
                const tls::PeerFacts facts = client->tls_facts();
                if (tr.error) {
                    // A pooled connection the peer dropped meanwhile: retry once on a fresh one.
                    if (reused && !tr.error->reply && round == 0) {
                        client.reset();
                        continue;
                    }
                    Evidence ev;
                    ev.session = *tr.error;
                    ev.required = hop_level;
                    ev.host = hop.host;
                    auto cl = classify(ev);
                    for (auto i : idxs) log_attempt(env, i, hop.host, addr, hop_level, hop_why, &facts, cl);
                    if (tr.connection_usable) {
                        pool.emplace(key, Idle{std::move(client), std::chrono::steady_clock::now()});
                    } else {
                        co_await client->quit();
                    }
                    RcptOutcome oc{cl, hop.host, addr, std::nullopt};
                    if (cl.outcome == Outcome::tls_policy) oc.tls_failure = ev.session;
                    if (cl.try_next_host) {
                        last = oc;
                        break;
                    }
                    for (auto i : idxs) out[i] = oc;
                    co_return;
                }
                for (const auto& r : tr.recipients) {
                    Evidence ev;
                    ev.recipient = r;
                    ev.required = hop_level;
                    ev.host = hop.host;
                    auto cl = classify(ev);
                    log_attempt(env, r.index, hop.host, addr, hop_level, hop_why, &facts, cl);
                    out[r.index] = RcptOutcome{cl, hop.host, addr, std::nullopt};
                }
                if (tr.connection_usable) {
                    pool.emplace(key, Idle{std::move(client), std::chrono::steady_clock::now()});
                } else {
                    co_await client->quit();
                }
                co_return;
            }
        }
    }
    if (!last) last = std::move(looped);  // every usable address was a loop: 5.4.6, a bounce
    const Classified c = last ? last->c : classify_unreachable(route.domain);
    for (auto i : idxs) out[i] = last ? RcptOutcome{c, last->host, last->address, last->tls_failure} : RcptOutcome{c};
}


}  // namespace mailward::delivery
