// The delivery engine: see engine.hpp. All engine state lives on one strand; SQLite calls run on
// a small blocking pool. A message is leased before work starts and its outcome (and any bounce,
// queued durably first) recorded before the lease is released: a crash in between re-delivers,
// it never loses (at least once).
#include "delivery/engine.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <spdlog/spdlog.h>

#include "common/blocking.hpp"
#include "common/log_escape.hpp"
#include "common/metrics.hpp"
#include "common/timefmt.hpp"
#include "config/config.hpp"
#include "delivery/dkim_step.hpp"
#include "delivery/dsn.hpp"
#include "delivery/engine_impl.hpp"

namespace mailward::delivery {
namespace asio = boost::asio;
using asio::as_tuple;
using asio::use_awaitable;
using Clock = std::chrono::system_clock;

namespace {

constexpr std::size_t kLeaseBatch = 64;
constexpr auto kIdlePoll = std::chrono::seconds(5);

std::string domain_of(const std::string& address) {
    auto at = address.rfind('@');
    std::string d = at == std::string::npos ? std::string() : address.substr(at + 1);
    for (auto& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return d;
}

void set_timeouts(ClientTimeouts& t, const config::Config& cfg) {
    t.connect = cfg.delivery.connect_timeout;
    t.greeting = cfg.delivery.greeting_timeout;
    t.command = cfg.delivery.command_timeout;
    t.data_init = cfg.delivery.data_init_timeout;
    t.data_block = cfg.delivery.data_block_timeout;
    t.data_done = cfg.delivery.data_done_timeout;
}

}  // namespace

Engine::Impl::Impl(asio::io_context& i, const config::Config& c, store::Store& s, dns::Resolver& r,
                   tls::ClientContext t)
    : io(i),
      cfg(c),
      store(s),
      resolver(r),
      tls(std::move(t)),
      strand(asio::make_strand(i)),
      wake(strand),
      rng(std::random_device{}()),
      drain_bound(strand),
      renew_timer(strand),
      slots(strand, c.delivery.max_per_destination) {
    owner = config::node_name(cfg);
    own = outbound::own_addresses(cfg);
    set_timeouts(timeouts, cfg);
}

void Engine::Impl::drained_if_idle() {
    if (!on_drained || in_flight > 0) return;
    auto done = std::move(on_drained);
    on_drained = nullptr;
    drain_bound.cancel();
    done(0);
}

Clock::duration Engine::Impl::retry_delay(int attempts) {
    const auto& sched = cfg.delivery.retry_schedule;
    auto base = sched[std::min<std::size_t>(static_cast<std::size_t>(std::max(attempts, 1) - 1), sched.size() - 1)];
    // +-10% jitter so that messages deferred together do not retry in lockstep.
    std::uniform_real_distribution<double> jitter(0.9, 1.1);
    return std::chrono::duration_cast<Clock::duration>(base * jitter(rng));
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
    Outcomes outcomes;
    if (body && s.dkim) dkim_sign_for_delivery(*s.dkim, env, *body);
    if (!body) {
        spdlog::error("delivery: {}: the message body cannot be read: {}", id, body.error().message());
    } else {
        for (const auto& [domain, idxs] : by_domain) {
            // Per-destination concurrency: wait for a slot (bounded by the attempt timeouts).
            co_await s.slots.acquire(domain);
            co_await s.deliver_domain(env, *body, domain, idxs, outcomes);
            s.slots.release(domain);
        }
    }

    std::vector<store::QueueStore::RecipientUpdate> updates;
    std::vector<DsnRecipient> notes;  // failed, delayed and relayed recipients, for one notification
    const bool expired = now - env.received_at >= s.cfg.delivery.max_queue_lifetime;
    const auto warn_after = s.cfg.delivery.delay_warning_time;
    const bool delay_due = warn_after.count() > 0 && now - env.received_at >= warn_after;
    for (const auto& [domain, idxs] : by_domain) {
        for (auto i : idxs) {
            const auto& r = env.recipients[i];
            store::QueueStore::RecipientUpdate u;
            u.index = i;
            u.attempts = r.attempts + 1;
            u.next_attempt = now;
            u.delay_warned = r.delay_warned;
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
            if (oc.escrow) {
                // Held for escrow: never plaintext, never dropped (the escrow issue seals it).
                u.state = store::RcptState::awaiting_escrow;
                updates.push_back(u);
                continue;
            }
            switch (oc.c.outcome) {
                case Outcome::delivered:
                    u.state = store::RcptState::delivered;
                    // RFC 3461 5.2.2: a next hop without DSN cannot report success; we say "relayed".
                    if (!oc.next_hop_dsn)
                        notes.push_back(
                            {i, "2.0.0", oc.c.diagnostic, oc.host, "delivered to " + oc.host, DsnAction::relayed});
                    break;
                case Outcome::permanent:
                    u.state = store::RcptState::failed;
                    notes.push_back({i, oc.c.status, oc.c.diagnostic, oc.host, oc.c.reason});
                    break;
                case Outcome::temporary:
                case Outcome::tls_policy:
                    if (expired) {
                        u.state = store::RcptState::failed;
                        u.last_error = "gave up after " +
                                       common::format_duration(std::chrono::duration_cast<common::Duration>(
                                           s.cfg.delivery.max_queue_lifetime)) +
                                       " in the queue; last error: " + oc.c.reason;
                        notes.push_back({i, expired_status(oc.c), oc.c.diagnostic, oc.host, u.last_error});
                    } else {
                        u.state = store::RcptState::queued;
                        u.next_attempt = now + s.retry_delay(u.attempts);
                        if (delay_due && !r.delay_warned && wants_dsn(env, r, DsnAction::delayed)) {
                            notes.push_back(
                                {i, oc.c.status, oc.c.diagnostic, oc.host, oc.c.reason, DsnAction::delayed});
                            u.delay_warned = true;
                        }
                    }
                    break;
            }
            updates.push_back(u);
        }
    }

    if (!notes.empty() && body) {
        DsnOptions opt{s.cfg.server.hostname, now, env.received_at + s.cfg.delivery.max_queue_lifetime};
        if (auto dsn = make_dsn(env, *body, notes, opt)) {
            const std::string dsn_id = dsn->envelope.id;
            // Durably queued by the store's writer; this coroutine waits without holding a thread.
            auto submit = [&queue, &dsn](auto done) { queue.submit(std::move(*dsn), std::move(done)); };
            auto r = co_await common::await_callback<Result<void>>(submit);
            if (!r) {
                // No silent loss: without its bounce stored, the failure is not recorded either; a
                // delay notice is due again at the next attempt. A success report cannot undo the
                // delivery: it is lost, and the log says so.
                spdlog::error("delivery: {}: notification to the sender could not be queued ({}); retrying later", id,
                              r.error().message());
                for (auto& u : updates) {
                    if (u.state == store::RcptState::failed) {
                        u.state = store::RcptState::queued;
                        u.next_attempt = now + std::chrono::minutes(1);
                    }
                    if (u.state == store::RcptState::queued) u.delay_warned = env.recipients[u.index].delay_warned;
                }
            } else {
                std::string actions;
                for (const auto& n : notes) {
                    const auto a = std::string(to_string(n.action));
                    if (wants_dsn(env, env.recipients[n.index], n.action) && actions.find(a) == std::string::npos)
                        actions += (actions.empty() ? "" : ",") + a;
                }
                // "bounce" for a failure notice, as the log has always said; "notification" otherwise.
                spdlog::info("delivery: {}: {} {} ({}) queued for <{}>", id,
                             actions.find("failed") != std::string::npos ? "bounce" : "notification", dsn_id, actions,
                             common::log_escape(env.sender));
                s.kicked = true;
            }
        }
    }
    s.log_outcomes(env, updates, outcomes, now);
    const std::string owner = s.owner;
    // Recorded by the store's writer together with other writes (one flush for many attempts);
    // this coroutine waits without holding a thread.
    auto record = [&queue, &id, &owner, &updates](auto done) {
        queue.complete_attempt_async(id, owner, updates, std::move(done));
    };
    auto done = co_await common::await_callback<Result<void>>(record);
    if (!done) spdlog::error("delivery: {}: recording the attempt failed: {}", id, done.error().message());
    --s.in_flight;
    s.leased.erase(id);
    s.kicked = true;
    s.wake.cancel();
    s.drained_if_idle();
}

void Engine::Impl::log_outcomes(const store::Envelope& env,
                                const std::vector<store::QueueStore::RecipientUpdate>& updates,
                                const Outcomes& outcomes, Clock::time_point now) const {
    const double delay = std::chrono::duration<double>(now - env.received_at).count();
    for (const auto& u : updates) {
        OutcomeLine line;
        line.queue_id = env.id;
        line.recipient = env.recipients[u.index].address;
        line.port = cfg.delivery.port;
        line.delay_seconds = delay;
        line.text = u.last_error;
        switch (u.state) {
            case store::RcptState::delivered: line.status = "sent"; break;
            case store::RcptState::failed: line.status = "bounced"; break;
            case store::RcptState::awaiting_escrow: line.status = "escrowed"; break;
            default: line.status = "deferred"; break;
        }
        if (auto it = outcomes.find(u.index); it != outcomes.end()) {
            const auto& oc = it->second;
            line.relay_host = oc.host;
            line.route = oc.route;
            line.relay_address = oc.address;
            if (oc.level) line.level = tls::to_string(*oc.level);
            line.tls_version = oc.tls_version;
            line.tls_cipher = oc.tls_cipher;
            if (u.state == store::RcptState::delivered && !oc.c.diagnostic.empty()) {
                std::string_view reply = oc.c.diagnostic;
                if (reply.rfind("smtp; ", 0) == 0) reply.remove_prefix(6);
                line.text = std::string(reply);
            }
        }
        spdlog::info("{}", format_outcome(line));
        const std::string_view level = line.level.empty() ? std::string_view("none") : std::string_view(line.level);
        common::metrics::add(
            "mailward_deliveries_total",
            "Recipients' delivery outcomes (sent, deferred, bounced, escrowed), by required TLS level.",
            {{"result", line.status}, {"tls_level", level}});
        common::metrics::observe("mailward_delivery_delay_seconds",
                                 "Time from receipt to each delivery outcome (sent, deferred, bounced, escrowed).",
                                 {{"result", line.status}}, delay);
    }
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
        const std::size_t slots =
            s.cfg.delivery.max_concurrency > s.in_flight ? s.cfg.delivery.max_concurrency - s.in_flight : 0;
        if (slots > 0) {
            const auto now = Clock::now();
            const std::size_t limit = std::min(slots, kLeaseBatch);
            const auto lease_for = std::chrono::duration_cast<std::chrono::milliseconds>(s.cfg.store.lease_time);
            auto lease = [&queue, &owner, now, limit, lease_for]() {
                return queue.lease_due(now, limit, owner, lease_for);
            };
            auto envs = co_await common::run_blocking<Result<std::vector<store::Envelope>>>(s.blocking, lease);
            if (!envs) {
                spdlog::error("delivery: leasing due messages failed: {}", envs.error().message());
            } else {
                leased = envs->size();
                for (auto& env : *envs) {
                    ++s.in_flight;
                    s.leased.insert(env.id);
                    // Nothing on the delivery path throws by design; if something does, say so
                    // (detached would swallow it) - the lease then expires and the message is retried.
                    asio::co_spawn(s.strand, deliver(self, env), [id = env.id](std::exception_ptr e) {
                        if (!e) return;
                        try {
                            std::rethrow_exception(e);
                        } catch (const std::exception& x) {
                            spdlog::critical("delivery: {}: unexpected exception: {}", id, x.what());
                        } catch (...) {
                            spdlog::critical("delivery: {}: unexpected exception", id);
                        }
                    });
                }
                if (leased == limit) continue;  // more may be due right now
            }
        }
        if (s.kicked) continue;
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::seconds(kIdlePoll));
        // With every slot busy nothing could be leased before one frees, and a freed slot kicks:
        // no query then (a burst of submissions would otherwise cost one per wake-up).
        if (slots > 0) {
            auto next = [&queue]() { return queue.next_due(); };
            auto due = co_await common::run_blocking<Result<std::optional<store::TimePoint>>>(s.blocking, next);
            if (due && due->has_value()) {
                auto until = std::chrono::duration_cast<std::chrono::milliseconds>(**due - Clock::now());
                wait = std::clamp(until, std::chrono::milliseconds(0), wait);
                if (until.count() <= 0 && leased == 0) wait = std::chrono::milliseconds(200);  // leased elsewhere
            }
        }
        if (s.kicked) continue;
        s.wake.expires_after(wait);
        co_await s.wake.async_wait(as_tuple(use_awaitable));
    }
    co_await s.pool.close_all();  // close idle connections politely
}

// Keeps the leases of the deliveries in flight alive: a transfer may outlast store.lease_time (a big
// message to a slow MX), and its message must not be leased again meanwhile, by this node or another.
// A node that dies stops renewing, so its messages are taken over within lease_time.
asio::awaitable<void> Engine::Impl::renew(std::shared_ptr<Impl> self) {
    auto& s = *self;
    auto& queue = s.store.queue();
    while (!(s.stopping && s.in_flight == 0)) {
        s.renew_timer.expires_after(s.cfg.store.lease_time / 3);
        co_await s.renew_timer.async_wait(as_tuple(use_awaitable));
        if (s.leased.empty()) continue;
        const std::vector<std::string> ids(s.leased.begin(), s.leased.end());
        const auto until = Clock::now() + s.cfg.store.lease_time;
        auto extend = [&queue, owner = s.owner, &ids, until]() { return queue.renew_leases(owner, ids, until); };
        auto n = co_await common::run_blocking<Result<std::size_t>>(s.blocking, extend);
        // Deliveries that ended while the renewal ran released their leases: only those still in
        // flight had to be renewed.
        const auto still = static_cast<std::size_t>(
            std::count_if(ids.begin(), ids.end(), [&s](const std::string& id) { return s.leased.count(id) > 0; }));
        if (!n) {
            spdlog::error("delivery: renewing the leases of {} delivery(ies) in flight failed: {}", ids.size(),
                          n.error().message());
        } else if (*n < still) {
            // Leases lost meanwhile (taken over after a stall): those attempts' outcomes will be
            // refused on PostgreSQL; the new owner delivers.
            spdlog::warn("delivery: {} of {} lease(s) in flight could not be renewed", still - *n, still);
        }
    }
}

Engine::Engine(asio::io_context& io, const config::Config& cfg, store::Store& store, dns::Resolver& resolver,
               tls::ClientContext tls)
    : impl_(std::make_shared<Impl>(io, cfg, store, resolver, std::move(tls))) {}

Engine::~Engine() {
    stop();
    impl_->blocking.join();
}

void Engine::set_probe_options(probe::ProbeOptions opts) {
    impl_->prober.emplace(impl_->resolver, impl_->tls, std::move(opts));
}

void Engine::set_preload(policy::PreloadList list) { impl_->preload = std::move(list); }

void Engine::set_mta_sts(policy::MtaStsCache* cache) { impl_->mta_sts = cache; }
void Engine::set_route_passwords(std::map<std::string, std::string> passwords) {
    impl_->route_passwords = std::move(passwords);
}

void Engine::set_dkim(std::shared_ptr<const dkim::Signer> signer) { impl_->dkim = std::move(signer); }

void Engine::set_tlsrpt(std::shared_ptr<TlsRptRecorder> recorder) { impl_->tlsrpt = std::move(recorder); }

void Engine::start() {
    auto path = impl_->cfg.server.data_dir / "delivery.log";
    if (!impl_->log.open(path))
        spdlog::warn("delivery: cannot open {}; attempts are logged here instead", path.string());
    asio::co_spawn(impl_->strand, Impl::run(impl_), asio::detached);
    asio::co_spawn(impl_->strand, Impl::renew(impl_), asio::detached);
}

void Engine::stop() {
    auto self = impl_;
    asio::post(impl_->strand, [self] {
        self->stopping = true;
        self->wake.cancel();
        self->slots.stop();
    });
}

void Engine::drain(std::chrono::milliseconds bound, std::function<void(std::size_t)> done) {
    auto self = impl_;
    asio::post(impl_->strand, [self, bound, done = std::move(done)]() mutable {
        self->stopping = true;  // the scheduler leases nothing more
        self->wake.cancel();
        self->on_drained = std::move(done);
        if (self->in_flight == 0) {
            self->drained_if_idle();
            return;
        }
        spdlog::info("delivery: draining: {} delivery(ies) in flight, waiting up to {} ms", self->in_flight,
                     bound.count());
        self->drain_bound.expires_after(bound);
        self->drain_bound.async_wait([self](const boost::system::error_code& ec) {
            if (ec || !self->on_drained) return;
            auto f = std::move(self->on_drained);
            self->on_drained = nullptr;
            f(self->in_flight);
        });
    });
}

void Engine::reload(const config::Config& cfg, std::optional<policy::PreloadList> preload) {
    auto self = impl_;
    asio::post(impl_->strand, [self, cfg, preload = std::move(preload)]() mutable {
        self->cfg = std::move(cfg);
        set_timeouts(self->timeouts, self->cfg);
        self->preload = std::move(preload);
        self->kicked = true;  // a shorter retry schedule may make messages due now
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
