// The SMTP attempts of one delivery to one domain (RFC 5321 section 5: MX hosts in order, every
// address of each): the execution of policy::plan()'s per-host plan - the hosts it allows, each at
// its own level with its TLSA records (RFC 7672), the hosts it refuses logged with the reason
// (RFC 7672 2.1.1 and 2.2). Nothing here decides a level. Addresses that loop back (loopback
// unless allowed, our own listeners) are never used. Idle connections are pooled by reuse_key()
// (every input of the connection's checks) and reused (Postfix's connection cache). The delivery
// log gets one line per recipient and attempt.
#include <algorithm>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/metrics.hpp"
#include "common/timefmt.hpp"
#include "delivery/engine_impl.hpp"

namespace mailward::delivery {
namespace asio = boost::asio;
using Clock = std::chrono::system_clock;

namespace {

nlohmann::json tls_json(const tls::PeerFacts& f) {
    if (!f.established) return nullptr;
    nlohmann::json chain = nlohmann::json::array();
    for (const auto& c : f.chain)
        chain.push_back({{"subject", c.subject}, {"issuer", c.issuer}, {"not_after", c.not_after}});
    return {{"protocol", f.protocol},         {"cipher", f.cipher},
            {"bits", f.cipher_bits},          {"forward_secret", f.forward_secret},
            {"spki_sha256", f.spki_sha256},   {"chain_valid", f.chain_valid},
            {"name_matched", f.name_matched}, {"verify_error", f.verify_error},
            {"dane_matched", f.dane_matched}, {"chain", chain}};
}

}  // namespace

void Engine::Impl::log_attempt(const store::Envelope& env, std::size_t idx, const std::string& route,
                               const std::string& host, const std::string& address, tls::Level level,
                               const std::vector<std::string>& why, const tls::PeerFacts* facts, const Classified& c,
                               std::string_view result) {
    AttemptLine a;
    a.time = Clock::now();
    a.queue_id = env.id;
    a.recipient = env.recipients[idx].address;
    a.route = route;
    a.mx = host;
    a.address = address;
    a.required_level = level;
    a.level_reasons = why;
    a.tls = facts ? tls_json(*facts) : nullptr;
    a.result = result.empty() ? std::string(to_string(c.outcome)) : std::string(result);
    a.status = c.status;
    a.reply = c.diagnostic;
    a.reason = c.reason;
    log.write(format_attempt(a));
    common::metrics::inc("mailward_delivery_attempts_total", "Delivery attempts per recipient, by result.", "result",
                         result.empty() ? to_string(c.outcome) : result);
}

void Engine::Impl::record_tls(const AttemptPlan& plan, const policy::PlannedHost& ph, const std::string& address,
                              const SessionError* err, const SmtpClient* client) {
    if (!plan.record_tls || !tlsrpt || (!err && !client)) return;
    const auto v = tlsrpt_verdict(err, client ? &client->tls_facts() : nullptr,
                                  client ? client->starttls_offered() : false, ph.level);
    if (!v.counted) return;
    tlsrpt::Session s;
    s.policy = tlsrpt_policy(plan.domain, plan.sts, ph.tlsa, ph.level);
    s.result = v.failure;
    s.sending_ip = err ? err->local_address : client->local_address();
    s.receiving_mx = ph.host;
    s.receiving_ip = address;
    tlsrpt->record(s, Clock::now());
}

asio::awaitable<void> Engine::Impl::deliver_to(const store::Envelope& env, const std::string& body, const Route& route,
                                               const std::vector<std::size_t>& idxs, Outcomes& out,
                                               const AttemptPlan& plan) {
    std::optional<RcptOutcome> last;    // the most telling failure so far, used if no host takes the mail
    std::optional<RcptOutcome> looped;  // the first address refused as a loop (used if nothing else was tried)
    for (const auto& ph : plan.hosts) {
        if (ph.index >= route.hops.size() || route.hops[ph.index].host != ph.host) continue;  // not this route's
        const Hop& hop = route.hops[ph.index];
        const tls::Level hop_level = ph.level;
        const std::vector<std::string>& hop_why = ph.why;
        if (ph.refused != policy::HostRefusal::none) {
            Evidence ev;
            ev.host = hop.host;
            ev.route_detail = ph.refusal_detail;
            switch (ph.refused) {
                case policy::HostRefusal::no_addresses: ev.refusal = HopRefusal::no_addresses; break;
                case policy::HostRefusal::address_lookup_failed: ev.refusal = HopRefusal::address_lookup_failed; break;
                case policy::HostRefusal::tlsa_lookup_failed: ev.refusal = HopRefusal::tlsa_lookup_failed; break;
                case policy::HostRefusal::none: break;
            }
            const auto c = classify(ev);
            if (ph.refused == policy::HostRefusal::tlsa_lookup_failed && plan.record_tls && tlsrpt) {
                // RFC 8460 4.3.2 dnssec-invalid: the TLSA answer could not be validated.
                tlsrpt::Session s;
                s.policy.type = tlsrpt::PolicyType::tlsa;
                s.policy.domain = plan.domain;
                s.result = tlsrpt::ResultType::dnssec_invalid;
                s.receiving_mx = hop.host;
                tlsrpt->record(s, Clock::now());
            }
            if (ph.refused != policy::HostRefusal::no_addresses) {
                for (auto i : idxs) log_attempt(env, i, route.via, hop.host, "", hop_level, hop_why, nullptr, c);
            }
            last = RcptOutcome{c, hop.host};
            last->with_tls(hop_level, nullptr);
            continue;
        }
        const unsigned short port = route.port ? route.port : cfg.delivery.port;
        for (const auto& addr : hop.addresses) {
            // Loop protection: never to ourselves; to loopback only where the config allows it.
            if (const auto loop = loop_kind(addr, port, own);
                loop == LoopKind::own_listener || (loop == LoopKind::loopback && !cfg.delivery.allow_loopback_mx)) {
                Evidence ev;
                ev.refusal = HopRefusal::loops_back;
                ev.host = hop.host;
                ev.route_detail =
                    hop.host + " [" + addr + "]:" + std::to_string(port) + " is " +
                    (loop == LoopKind::own_listener ? "one of mailward's own listeners"
                                                    : "a loopback address ([delivery] allow_loopback_mx = false)");
                auto c = classify(ev);
                spdlog::warn("delivery: {}: {}", env.id, c.reason);
                for (auto i : idxs)
                    log_attempt(env, i, route.via, hop.host, addr, hop_level, hop_why, nullptr, c, "loop");
                if (!looped) looped = RcptOutcome{c, hop.host, addr}.with_tls(hop_level, nullptr);
                continue;
            }
            Target target;
            target.mx_host = hop.host;
            target.address = addr;
            target.port = port;
            target.auth_user = route.auth_user;
            target.auth_password = route.auth_password;
            target.bind_address = addr.find(':') != std::string::npos ? route.bind_address6 : route.bind_address;
            target.level = hop_level;
            target.tlsa = ph.tlsa;
            target.helo_name = cfg.server.hostname;
            target.known_spki = ph.known_spki;
            const std::string key = reuse_key(target, env.requiretls);
            std::unique_ptr<SmtpClient> client = co_await pool.take(key);
            bool reused = client != nullptr;
            for (int round = 0; round < 2; ++round) {
                if (!client) {
                    auto [c, err] = co_await SmtpClient::connect(strand, target, tls, timeouts);
                    record_tls(plan, ph, addr, c || !err ? nullptr : &*err, c.get());
                    if (!c) {
                        Evidence ev;
                        ev.session = err.value_or(SessionError{});
                        ev.required = hop_level;
                        ev.host = hop.host;
                        auto cl = classify(ev);
                        const tls::PeerFacts* facts = ev.session->tls ? &*ev.session->tls : nullptr;
                        for (auto i : idxs)
                            log_attempt(env, i, route.via, hop.host, addr, hop_level, hop_why, facts, cl);
                        last = RcptOutcome{cl, hop.host, addr, std::nullopt}.with_tls(hop_level, facts);
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
                    if (reused && !tr.error->reply && tr.error->refusal == outbound::Refusal::none && round == 0) {
                        client.reset();
                        continue;
                    }
                    Evidence ev;
                    ev.session = *tr.error;
                    ev.required = hop_level;
                    ev.host = hop.host;
                    auto cl = classify(ev);
                    for (auto i : idxs) log_attempt(env, i, route.via, hop.host, addr, hop_level, hop_why, &facts, cl);
                    if (tr.connection_usable) {
                        pool.put(key, std::move(client));
                    } else {
                        co_await client->quit();
                    }
                    RcptOutcome oc{cl, hop.host, addr, std::nullopt};
                    oc.with_tls(hop_level, &facts);
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
                    log_attempt(env, r.index, route.via, hop.host, addr, hop_level, hop_why, &facts, cl);
                    out[r.index] = RcptOutcome{cl, hop.host, addr, std::nullopt}.with_tls(hop_level, &facts);
                    out[r.index].next_hop_dsn = client->offers_dsn();
                }
                if (tr.connection_usable) {
                    pool.put(key, std::move(client));
                } else {
                    co_await client->quit();
                }
                co_return;
            }
        }
    }
    if (!last) last = std::move(looped);  // every usable address was a loop: 5.4.6, a bounce
    const Classified c = last ? last->c : classify_unreachable(route.domain);
    for (auto i : idxs) {
        if (!last) {
            out[i] = RcptOutcome{c};
            continue;
        }
        out[i] = *last;
        out[i].c = c;
    }
}

}  // namespace mailward::delivery
