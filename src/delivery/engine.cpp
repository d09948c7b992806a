// The delivery engine: see engine.hpp. All engine state lives on one strand; SQLite calls run on
// a small blocking pool. A message is leased before work starts and its outcome (and any bounce,
// queued durably first) recorded before the lease is released: a crash in between re-delivers,
// it never loses (at least once).
#include "delivery/engine.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <spdlog/spdlog.h>

#include "common/blocking.hpp"
#include "common/timefmt.hpp"
#include "config/config.hpp"
#include "delivery/classify.hpp"
#include "delivery/delivery_log.hpp"
#include "delivery/dsn.hpp"
#include "delivery/route.hpp"
#include "store/store.hpp"

namespace mailward::delivery {
namespace asio = boost::asio;
using asio::as_tuple;
using asio::use_awaitable;
using Clock = std::chrono::system_clock;

namespace {

constexpr std::size_t kLeaseBatch = 64;
constexpr auto kLeaseFor = std::chrono::minutes(30);
constexpr auto kIdlePoll = std::chrono::seconds(5);
constexpr auto kPoolIdle = std::chrono::seconds(2);  // as Postfix's smtp_connection_cache_time_limit

std::string domain_of(const std::string& address) {
    auto at = address.rfind('@');
    std::string d = at == std::string::npos ? std::string() : address.substr(at + 1);
    for (auto& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return d;
}

nlohmann::json tls_json(const tls::PeerFacts& f) {
    if (!f.established) return nullptr;
    nlohmann::json chain = nlohmann::json::array();
    for (const auto& c : f.chain) chain.push_back({{"subject", c.subject}, {"issuer", c.issuer}, {"not_after", c.not_after}});
    return {{"protocol", f.protocol},       {"cipher", f.cipher},         {"bits", f.cipher_bits},
            {"forward_secret", f.forward_secret}, {"spki_sha256", f.spki_sha256}, {"chain_valid", f.chain_valid},
            {"name_matched", f.name_matched}, {"verify_error", f.verify_error}, {"dane_matched", f.dane_matched},
            {"chain", chain}};
}

// What the attempt to one domain decided for each of its recipients.
struct RcptOutcome {
    Classified c;
    std::string host;
};

}  // namespace

struct Engine::Impl : std::enable_shared_from_this<Engine::Impl> {
    Impl(asio::io_context& i, const config::Config& c, store::Store& s, dns::Resolver& r, tls::ClientContext t)
        : io(i), cfg(c), store(s), resolver(r), tls(std::move(t)), strand(asio::make_strand(i)), wake(strand),
          rng(std::random_device{}()) {
        owner = cfg.server.hostname;
        timeouts.connect = cfg.delivery.connect_timeout;
        timeouts.greeting = cfg.delivery.greeting_timeout;
        timeouts.command = cfg.delivery.command_timeout;
        timeouts.data_init = cfg.delivery.data_init_timeout;
        timeouts.data_block = cfg.delivery.data_block_timeout;
        timeouts.data_done = cfg.delivery.data_done_timeout;
    }

    asio::io_context& io;
    const config::Config& cfg;
    store::Store& store;
    dns::Resolver& resolver;
    tls::ClientContext tls;
    asio::strand<asio::io_context::executor_type> strand;
    asio::steady_timer wake;
    asio::thread_pool blocking{1};
    std::mt19937 rng;
    std::string owner;
    ClientTimeouts timeouts;
    DeliveryLog log;
    bool stopping = false;
    bool kicked = false;
    std::size_t in_flight = 0;
    std::map<std::string, std::size_t> per_domain;  // active attempts per destination domain
    DomainProber prober;

    struct Idle {
        std::unique_ptr<SmtpClient> client;
        std::chrono::steady_clock::time_point since;
    };
    std::multimap<std::string, Idle> pool;  // "address|port|level" -> idle connections

    // ---- scheduler ----
    static asio::awaitable<void> run(std::shared_ptr<Impl> self);
    static asio::awaitable<void> deliver(std::shared_ptr<Impl> self, store::Envelope env);
    asio::awaitable<void> deliver_domain(const store::Envelope& env, const std::string& body, const std::string& domain,
                                         const std::vector<std::size_t>& idxs, std::map<std::size_t, RcptOutcome>& out);
    asio::awaitable<void> deliver_to(const store::Envelope& env, const std::string& body, const std::string& domain,
                                     const std::vector<std::size_t>& idxs, std::map<std::size_t, RcptOutcome>& out,
                                     tls::Level level, const std::vector<std::string>& why);
    tls::Level base_level(const store::Envelope& env, const std::string& domain, std::vector<std::string>& why) const;
    asio::awaitable<std::optional<tls::Level>> learned_level(const store::Envelope& env, const std::string& domain,
                                                              std::vector<std::string>& why);
    Clock::duration retry_delay(int attempts);
    void log_attempt(const store::Envelope& env, std::size_t idx, const std::string& host, const std::string& address,
                     tls::Level level, const std::vector<std::string>& why, const tls::PeerFacts* facts,
                     const Classified& c);
    asio::awaitable<std::unique_ptr<SmtpClient>> take_idle(const std::string& key);
};

Clock::duration Engine::Impl::retry_delay(int attempts) {
    const auto& sched = cfg.delivery.retry_schedule;
    auto base = sched[std::min<std::size_t>(static_cast<std::size_t>(std::max(attempts, 1) - 1), sched.size() - 1)];
    // +-10% jitter so that messages deferred together do not retry in lockstep.
    std::uniform_real_distribution<double> jitter(0.9, 1.1);
    return std::chrono::duration_cast<Clock::duration>(base * jitter(rng));
}

tls::Level Engine::Impl::base_level(const store::Envelope& env, const std::string& domain,
                                    std::vector<std::string>& why) const {
    tls::Level level = tls::Level::may;
    why.push_back("default: may (opportunistic)");
    if (auto it = cfg.policy.domains.find(domain); it != cfg.policy.domains.end()) {
        if (auto l = tls::parse_level(it->second)) {
            level = tls::strictest(level, *l);
            why.push_back("static policy for " + domain + ": " + it->second);
        }
    }
    if (env.requiretls) {
        level = tls::strictest(level, tls::Level::verify);
        why.push_back("REQUIRETLS (RFC 8689): verify");
    }
    return level;
}

void Engine::Impl::log_attempt(const store::Envelope& env, std::size_t idx, const std::string& host,
                               const std::string& address, tls::Level level, const std::vector<std::string>& why,
                               const tls::PeerFacts* facts, const Classified& c) {
    nlohmann::json j = {{"time", common::iso8601(Clock::now())},
                        {"queue_id", env.id},
                        {"recipient", env.recipients[idx].address},
                        {"mx", host},
                        {"address", address},
                        {"required_level", tls::to_string(level)},
                        {"level_reasons", why},
                        {"tls", facts ? tls_json(*facts) : nullptr},
                        {"result", to_string(c.outcome)},
                        {"status", c.status},
                        {"reply", c.diagnostic},
                        {"reason", c.reason}};
    log.write(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
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

asio::awaitable<std::optional<tls::Level>> Engine::Impl::learned_level(const store::Envelope& env,
                                                                        const std::string& domain,
                                                                        std::vector<std::string>& why) {
    auto& policy = store.policy();
    auto get = [&policy, &domain]() { return policy.get(domain); };
    auto known = co_await common::run_blocking<Result<std::optional<store::LearnedPolicy>>>(blocking, get);
    if (!known) {
        spdlog::error("policy: cannot read the learned policy of {}: {}", domain, known.error().message());
        co_return std::nullopt;
    }
    if (!known->has_value() && prober && env.sender_mode != "opportunistic" && !domain.empty() && domain[0] != '[') {
        // First contact from a sender who must not go in the clear: learn from every MX first.
        auto verdict = co_await prober(domain);
        if (verdict.ok && verdict.level >= tls::Level::encrypt) {
            const std::string level(tls::to_string(verdict.level));
            const int rank = static_cast<int>(verdict.level);
            const auto now = Clock::now();
            auto raise = [&policy, &domain, &level, rank, &verdict, now]() {
                return policy.raise(domain, level, rank, verdict.report, now);
            };
            auto r = co_await common::run_blocking<Result<bool>>(blocking, raise);
            if (r) {
                spdlog::info("policy: learned {} for {} (every MX host probed)", level, domain);
                store::LearnedPolicy lp;
                lp.domain = domain;
                lp.level = level;
                lp.first_seen = lp.last_confirmed = now;
                *known = lp;
            }
        }
    }
    if (!known->has_value()) co_return std::nullopt;
    auto l = tls::parse_level((*known)->level);
    if (!l) co_return std::nullopt;
    why.push_back("learned: " + (*known)->level + " (first seen " + common::iso8601((*known)->first_seen) +
                  ", every MX host)");
    co_return l;
}

asio::awaitable<void> Engine::Impl::deliver_domain(const store::Envelope& env, const std::string& body,
                                                   const std::string& domain, const std::vector<std::size_t>& idxs,
                                                   std::map<std::size_t, RcptOutcome>& out) {
    std::vector<std::string> why;
    tls::Level level = base_level(env, domain, why);
    const auto learned = co_await learned_level(env, domain, why);
    if (learned) level = tls::strictest(level, *learned);
    co_await deliver_to(env, body, domain, idxs, out, level, why);
    if (!learned || *learned < tls::Level::encrypt) co_return;
    // A delivery made at the enforced level confirms what was learned (last_confirmed).
    for (auto i : idxs) {
        auto it = out.find(i);
        if (it == out.end() || it->second.c.outcome != Outcome::delivered) continue;
        auto& policy = store.policy();
        const std::string name(tls::to_string(*learned));
        const int rank = static_cast<int>(*learned);
        const auto now = Clock::now();
        auto confirm = [&policy, &domain, &name, rank, now]() { return policy.raise(domain, name, rank, "{}", now); };
        co_await common::run_blocking<Result<bool>>(blocking, confirm);
        break;
    }
    // The ratchet: a domain known to do TLS that now fails it is a possible attack, never a reason
    // to send in the clear. Record it (with the evidence) and say so loudly.
    for (auto i : idxs) {
        auto it = out.find(i);
        if (it == out.end() || it->second.c.outcome != Outcome::tls_policy) continue;
        store::PolicyIncident inc;
        inc.domain = domain;
        inc.at = Clock::now();
        const auto& reason = it->second.c.reason;
        inc.kind = reason.find("STARTTLS not offered") != std::string::npos ? "starttls_missing"
                   : reason.find("STARTTLS") != std::string::npos        ? "starttls_refused"
                                                                          : "tls_failed";
        inc.detail = reason;
        spdlog::warn("policy: possible STARTTLS downgrade attack on {} (learned {}): {}", domain,
                     tls::to_string(*learned), reason);
        auto& policy = store.policy();
        auto add = [&policy, &inc]() { return policy.add_incident(inc); };
        co_await common::run_blocking<Result<void>>(blocking, add);
        break;  // one incident per attempt
    }
}

asio::awaitable<void> Engine::Impl::deliver_to(const store::Envelope& env, const std::string& body,
                                               const std::string& domain, const std::vector<std::size_t>& idxs,
                                               std::map<std::size_t, RcptOutcome>& out, tls::Level level,
                                               const std::vector<std::string>& why) {
    std::string detail;
    auto route = co_await resolve_route(resolver, domain, rng, detail);
    if (!route) {
        Evidence ev;
        ev.route_error = route.error();
        ev.route_detail = detail;
        ev.required = level;
        auto c = classify(ev);
        for (auto i : idxs) {
            log_attempt(env, i, "", "", level, why, nullptr, c);
            out[i] = RcptOutcome{c, ""};
        }
        co_return;
    }
    std::optional<RcptOutcome> last;  // the most telling failure so far, used if no host takes the mail
    for (const auto& hop : route->hops) {
        tls::Level hop_level = level;
        std::vector<std::string> hop_why = why;
        std::vector<dns::TlsaRecord> tlsa;
        if (hop.addresses.empty()) {
            Classified c;
            c.outcome = Outcome::temporary;
            c.status = "4.4.3";
            c.reason = hop.host + ": " + hop.error;
            last = RcptOutcome{c, hop.host};
            continue;
        }
        if (cfg.policy.dane && route->mx_secure && hop.addresses_secure) {
            // RFC 7672 2.2: TLSA at _port._tcp.<MX host>, usable only from a secure answer.
            std::string name = "_" + std::to_string(cfg.delivery.port) + "._tcp." + hop.host;
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
                Classified c;
                c.outcome = Outcome::tls_policy;
                c.status = "4.7.5";
                c.reason = hop.host + ": TLSA lookup failed (" + t.error().message() + "), DANE status unknown";
                c.try_next_host = true;
                for (auto i : idxs) log_attempt(env, i, hop.host, "", tls::Level::dane, hop_why, nullptr, c);
                last = RcptOutcome{c, hop.host};
                continue;
            }
        }
        for (const auto& addr : hop.addresses) {
            const std::string key = addr + "|" + std::to_string(cfg.delivery.port) + "|" +
                                    std::string(tls::to_string(hop_level)) + "|" + hop.host;
            std::unique_ptr<SmtpClient> client = co_await take_idle(key);
            bool reused = client != nullptr;
            for (int round = 0; round < 2; ++round) {
                if (!client) {
                    Target target;
                    target.mx_host = hop.host;
                    target.address = addr;
                    target.port = cfg.delivery.port;
                    target.level = hop_level;
                    target.tlsa = tlsa;
                    target.helo_name = cfg.server.hostname;
                    auto [c, err] = co_await SmtpClient::connect(strand, target, tls, timeouts);
                    if (!c) {
                        Evidence ev;
                        ev.session = err.value_or(SessionError{});
                        ev.required = hop_level;
                        ev.host = hop.host;
                        auto cl = classify(ev);
                        const tls::PeerFacts* facts = ev.session->tls ? &*ev.session->tls : nullptr;
                        for (auto i : idxs) log_attempt(env, i, hop.host, addr, hop_level, hop_why, facts, cl);
                        last = RcptOutcome{cl, hop.host};
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
                    if (cl.try_next_host) {
                        last = RcptOutcome{cl, hop.host};
                        break;
                    }
                    for (auto i : idxs) out[i] = RcptOutcome{cl, hop.host};
                    co_return;
                }
                for (const auto& r : tr.recipients) {
                    Evidence ev;
                    ev.recipient = r;
                    ev.required = hop_level;
                    ev.host = hop.host;
                    auto cl = classify(ev);
                    log_attempt(env, r.index, hop.host, addr, hop_level, hop_why, &facts, cl);
                    out[r.index] = RcptOutcome{cl, hop.host};
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
    Classified c;
    if (last) {
        c = last->c;
    } else {
        c.outcome = Outcome::temporary;
        c.status = "4.4.1";
        c.reason = "no mail server of " + domain + " could be reached";
    }
    for (auto i : idxs) out[i] = RcptOutcome{c, last ? last->host : ""};
}

asio::awaitable<void> Engine::Impl::deliver(std::shared_ptr<Impl> self, store::Envelope env) {
    auto& s = *self;
    const std::string id = env.id;
    auto& queue = s.store.queue();
    auto load_body = [&queue, &id]() { return queue.body(id); };
    auto body = co_await common::run_blocking<Result<std::string>>(s.blocking, load_body);
    const auto now = Clock::now();

    std::map<std::string, std::vector<std::size_t>> by_domain;
    for (std::size_t i = 0; i < env.recipients.size(); ++i) {
        const auto& r = env.recipients[i];
        if (r.state == store::RcptState::queued && r.next_attempt <= now) by_domain[domain_of(r.address)].push_back(i);
    }
    std::map<std::size_t, RcptOutcome> outcomes;
    if (!body) {
        spdlog::error("delivery: {}: the message body cannot be read: {}", id, body.error().message());
    } else {
        for (const auto& [domain, idxs] : by_domain) {
            // Per-destination concurrency: wait for a slot (bounded by the attempt timeouts).
            while (s.per_domain[domain] >= s.cfg.delivery.max_per_destination && !s.stopping) {
                asio::steady_timer t(s.strand, std::chrono::milliseconds(50));
                co_await t.async_wait(as_tuple(use_awaitable));
            }
            ++s.per_domain[domain];
            co_await s.deliver_domain(env, *body, domain, idxs, outcomes);
            if (--s.per_domain[domain] == 0) s.per_domain.erase(domain);
        }
    }

    std::vector<store::QueueStore::RecipientUpdate> updates;
    std::vector<FailedRecipient> failed;
    const bool expired = now - env.received_at >= s.cfg.delivery.max_queue_lifetime;
    for (const auto& [domain, idxs] : by_domain) {
        for (auto i : idxs) {
            const auto& r = env.recipients[i];
            store::QueueStore::RecipientUpdate u;
            u.index = i;
            u.attempts = r.attempts + 1;
            u.next_attempt = now;
            auto it = outcomes.find(i);
            if (it == outcomes.end()) {  // body unreadable: keep it queued, try again later
                u.state = store::RcptState::queued;
                u.next_attempt = now + s.retry_delay(u.attempts);
                u.last_error = "local error: the message body could not be read";
                updates.push_back(u);
                continue;
            }
            const auto& oc = it->second;
            u.last_error = oc.c.reason;
            switch (oc.c.outcome) {
                case Outcome::delivered:
                    u.state = store::RcptState::delivered;
                    break;
                case Outcome::permanent:
                    u.state = store::RcptState::failed;
                    failed.push_back({i, oc.c.status, oc.c.diagnostic, oc.host, oc.c.reason});
                    break;
                case Outcome::temporary:
                case Outcome::tls_policy:
                    if (expired) {
                        u.state = store::RcptState::failed;
                        u.last_error = "gave up after " + common::format_duration(std::chrono::duration_cast<
                                           common::Duration>(s.cfg.delivery.max_queue_lifetime)) +
                                       " in the queue; last error: " + oc.c.reason;
                        std::string status = oc.c.status.empty() ? "4.4.7" : oc.c.status;
                        status[0] = '5';
                        failed.push_back({i, status, oc.c.diagnostic, oc.host, u.last_error});
                    } else {
                        u.state = store::RcptState::queued;
                        u.next_attempt = now + s.retry_delay(u.attempts);
                    }
                    break;
            }
            updates.push_back(u);
        }
    }

    if (!failed.empty() && body) {
        if (auto bounce = make_bounce(env, *body, failed, s.cfg.server.hostname, now)) {
            const std::string bounce_id = bounce->envelope.id;
            auto submit = [&queue, &bounce]() {
                std::promise<Result<void>> done;
                auto f = done.get_future();
                queue.submit(std::move(*bounce), [&done](Result<void> r) { done.set_value(r); });
                return f.get();
            };
            auto r = co_await common::run_blocking<Result<void>>(s.blocking, submit);
            if (!r) {
                // No silent loss: without its bounce stored, the failure is not recorded either.
                spdlog::error("delivery: {}: bounce could not be queued ({}); retrying later", id, r.error().message());
                for (auto& u : updates) {
                    if (u.state == store::RcptState::failed) {
                        u.state = store::RcptState::queued;
                        u.next_attempt = now + std::chrono::minutes(1);
                    }
                }
            } else {
                spdlog::info("delivery: {}: bounce {} queued for <{}>", id, bounce_id, env.sender);
                s.kicked = true;
            }
        }
    }
    const std::string owner = s.owner;
    auto complete = [&queue, &id, &owner, &updates]() { return queue.complete_attempt(id, owner, updates); };
    auto done = co_await common::run_blocking<Result<void>>(s.blocking, complete);
    if (!done) spdlog::error("delivery: {}: recording the attempt failed: {}", id, done.error().message());
    --s.in_flight;
    s.kicked = true;
    s.wake.cancel();
}

asio::awaitable<void> Engine::Impl::run(std::shared_ptr<Impl> self) {
    auto& s = *self;
    auto& queue = s.store.queue();
    const std::string owner = s.owner;
    auto release = [&queue, &owner]() { return queue.release_leases(owner); };
    if (auto n = co_await common::run_blocking<Result<std::size_t>>(s.blocking, release); n && *n > 0) {
        spdlog::info("delivery: released {} lease(s) left from a previous run", *n);
    }
    while (!s.stopping) {
        s.kicked = false;
        std::size_t leased = 0;
        const std::size_t slots = s.cfg.delivery.max_concurrency > s.in_flight ? s.cfg.delivery.max_concurrency - s.in_flight : 0;
        if (slots > 0) {
            const auto now = Clock::now();
            const std::size_t limit = std::min(slots, kLeaseBatch);
            auto lease = [&queue, &owner, now, limit]() {
                return queue.lease_due(now, limit, owner, std::chrono::duration_cast<std::chrono::milliseconds>(kLeaseFor));
            };
            auto envs = co_await common::run_blocking<Result<std::vector<store::Envelope>>>(s.blocking, lease);
            if (!envs) {
                spdlog::error("delivery: leasing due messages failed: {}", envs.error().message());
            } else {
                leased = envs->size();
                for (auto& env : *envs) {
                    ++s.in_flight;
                    asio::co_spawn(s.strand, deliver(self, std::move(env)), asio::detached);
                }
                if (leased == limit) continue;  // more may be due right now
            }
        }
        if (s.kicked) continue;
        auto next = [&queue]() { return queue.next_due(); };
        auto due = co_await common::run_blocking<Result<std::optional<store::TimePoint>>>(s.blocking, next);
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::seconds(kIdlePoll));
        if (due && due->has_value() && slots > 0) {
            auto until = std::chrono::duration_cast<std::chrono::milliseconds>(**due - Clock::now());
            wait = std::clamp(until, std::chrono::milliseconds(0), wait);
            if (until.count() <= 0 && leased == 0) wait = std::chrono::milliseconds(200);  // leased elsewhere
        }
        if (s.kicked) continue;
        s.wake.expires_after(wait);
        co_await s.wake.async_wait(as_tuple(use_awaitable));
    }
    // Close idle connections politely.
    while (!s.pool.empty()) {
        auto it = s.pool.begin();
        auto client = std::move(it->second.client);
        s.pool.erase(it);
        co_await client->quit();
    }
}

Engine::Engine(asio::io_context& io, const config::Config& cfg, store::Store& store, dns::Resolver& resolver,
               tls::ClientContext tls)
    : impl_(std::make_shared<Impl>(io, cfg, store, resolver, std::move(tls))) {}

Engine::~Engine() {
    stop();
    impl_->blocking.join();
}

void Engine::set_prober(DomainProber prober) { impl_->prober = std::move(prober); }

void Engine::start() {
    auto path = impl_->cfg.server.data_dir / "delivery.log";
    if (!impl_->log.open(path)) spdlog::warn("delivery: cannot open {}; attempts are logged here instead", path.string());
    asio::co_spawn(impl_->strand, Impl::run(impl_), asio::detached);
}

void Engine::stop() {
    auto self = impl_;
    asio::post(impl_->strand, [self] {
        self->stopping = true;
        self->wake.cancel();
    });
}

void Engine::kick() {
    auto self = impl_;
    asio::post(impl_->strand, [self] {
        self->kicked = true;
        self->wake.cancel();
    });
}

}  // namespace mailward::delivery
