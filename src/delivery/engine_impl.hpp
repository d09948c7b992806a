// The delivery engine's state (internal to src/delivery). The scheduler owns it and composes the
// parts that have one job each:
//   engine.cpp       the scheduler (leases, retries, lifetime, bounces, recording an attempt)
//   slots.hpp        per-destination concurrency, handed over first come, first served
//   pool.hpp         idle SMTP sessions by reuse key (connection reuse)
//   incidents.hpp    incidents recorded once per quiet period, and their metric
//   policy_step.cpp  per destination domain: gather facts -> policy::plan() -> execute -> after a
//                    TLS failure (the downgrade defence, policy::plan_after_tls_failure()); probes
//   gather.cpp       the facts plan() takes: route, store, MTA-STS, preload, TLSA answers
//   attempt.cpp      executes the plan's per-host attempts, through the pool
// Everything runs on one strand; SQLite calls go to a small blocking pool. A reload replaces cfg,
// the timeouts and the preload list there; a drain stops leasing and waits for what is in flight.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "delivery/classify.hpp"
#include "delivery/delivery_log.hpp"
#include "delivery/engine.hpp"
#include "delivery/incidents.hpp"
#include "delivery/pool.hpp"
#include "delivery/slots.hpp"
#include "dns/resolver.hpp"
#include "outbound/route.hpp"
#include "outbound/smtp_client.hpp"
#include "policy/facts.hpp"
#include "policy/mta_sts_fetch.hpp"
#include "policy/plan.hpp"
#include "probe/verdict.hpp"
#include "store/store.hpp"

namespace mailward::delivery {

// The connection layer's names as the engine's parts use them.
using outbound::ClientTimeouts;
using outbound::Hop;
using outbound::LoopKind;
using outbound::OwnAddresses;
using outbound::resolve_next_hop;
using outbound::resolve_route;
using outbound::Route;
using outbound::SessionError;
using outbound::SmtpClient;
using outbound::Target;
using outbound::TlsFault;

// What the attempt to one domain decided for one recipient.
struct RcptOutcome {
    RcptOutcome() = default;
    explicit RcptOutcome(Classified cl, std::string h = {}, std::string a = {},
                         std::optional<SessionError> f = std::nullopt)
        : c(std::move(cl)), host(std::move(h)), address(std::move(a)), tls_failure(std::move(f)) {}
    Classified c;
    std::string host;
    std::string address;
    std::optional<SessionError> tls_failure;  // for tls_policy outcomes: what the session saw
    bool escrow = false;                      // the policy holds it for escrow (awaiting_escrow)
    bool next_hop_dsn = false;                // delivered to a next hop that offered DSN (RFC 3461)
    // For the outcome line (delivery_log.hpp): the level required, the TLS session's protocol and
    // cipher (empty: none was made).
    std::optional<tls::Level> level;
    std::string tls_version;
    std::string tls_cipher;
    std::string route;  // the [[delivery.routes]] name used; "" when none applied
    // Sets the TLS fields from the attempt's level and session facts (nullptr: no session).
    RcptOutcome& with_tls(tls::Level l, const tls::PeerFacts* f) {
        level = l;
        if (f && f->established) {
            tls_version = f->protocol;
            tls_cipher = f->cipher;
        }
        return *this;
    }
};
using Outcomes = std::map<std::size_t, RcptOutcome>;

// How the attempts must be made: the plan's hosts, in order, each with its level, reasons, TLSA
// records and known keys, or why it is refused (policy::plan(); attempt.cpp only executes it).
struct AttemptPlan {
    std::vector<policy::PlannedHost> hosts;
    // TLS-RPT: the recipient domain and its MTA-STS policy in effect; record = false for a
    // [[delivery.routes]] next hop (not the domain's MX: RFC 8460 reports are about those).
    std::string domain;
    std::optional<policy::MtaStsPolicy> sts;
    bool record_tls = false;
};

// What was gathered for one destination before planning (gather.cpp).
struct Gathered {
    Route route;                    // the domain's MX hosts, or a route's next hop (route.via set)
    policy::EngineReading reading;  // route facts, store, MTA-STS, preload, probe
    policy::MessageFacts message;
    std::chrono::system_clock::time_point now{};
};

struct Engine::Impl : std::enable_shared_from_this<Engine::Impl> {
    Impl(boost::asio::io_context& i, const config::Config& c, store::Store& s, dns::Resolver& r, tls::ClientContext t);

    boost::asio::io_context& io;
    // The engine's own copy: Engine::reload() replaces it on the strand, between two uses (no
    // reference into it is held across a suspension point).
    config::Config cfg;
    store::Store& store;
    dns::Resolver& resolver;
    tls::ClientContext tls;
    boost::asio::strand<boost::asio::io_context::executor_type> strand;
    boost::asio::steady_timer wake;
    boost::asio::thread_pool blocking{1};
    std::mt19937 rng;
    std::string owner;
    ClientTimeouts timeouts;
    DeliveryLog log;
    bool stopping = false;
    // Engine::drain(): called once when the last delivery in flight ends or at the bound, with the
    // number still running then (abandoned).
    std::function<void(std::size_t)> on_drained;
    boost::asio::steady_timer drain_bound;
    void drained_if_idle();
    bool kicked = false;
    std::size_t in_flight = 0;
    std::set<std::string> leased;               // the messages of the deliveries in flight
    boost::asio::steady_timer renew_timer;      // renews their leases every third of store.lease_time
    DestinationSlots slots;                     // [delivery] max_per_destination
    std::optional<probe::DomainProber> prober;  // learning (set_probe_options)
    std::optional<policy::PreloadList> preload;
    policy::MtaStsCache* mta_sts = nullptr;
    std::shared_ptr<const dkim::Signer> dkim;  // [[dkim]] keys, set before start(); null: none
    std::shared_ptr<TlsRptRecorder> tlsrpt;    // [tlsrpt] enabled: TLS outcomes go here; null: none
    IncidentTracker recent_incidents;          // a downgrade that persists: once per quiet period
    // When a delivery last confirmed each domain's learned level (policy_step.cpp).
    static constexpr auto kConfirmEvery = std::chrono::seconds(1);
    std::map<std::string, std::chrono::steady_clock::time_point> last_confirm;
    // [[delivery.routes]] passwords by route name, as serve read them at start (set_route_passwords).
    std::map<std::string, std::string> route_passwords;

    ConnectionPool pool;  // idle sessions by outbound::reuse_key(target, requiretls)
    OwnAddresses own;     // the loop check's view of this host (at start)

    // engine.cpp
    static boost::asio::awaitable<void> run(std::shared_ptr<Impl> self);
    static boost::asio::awaitable<void> deliver(std::shared_ptr<Impl> self, store::Envelope env);
    static boost::asio::awaitable<void> renew(std::shared_ptr<Impl> self);
    std::chrono::system_clock::duration retry_delay(int attempts);
    // One line per recipient in the main log (delivery_log.hpp's outcome line), and the
    // deliveries' metrics.
    void log_outcomes(const store::Envelope& env, const std::vector<store::QueueStore::RecipientUpdate>& updates,
                      const Outcomes& outcomes, std::chrono::system_clock::time_point now) const;

    // policy_step.cpp: gather facts -> plan -> execute -> after a TLS failure
    boost::asio::awaitable<void> deliver_domain(const store::Envelope& env, const std::string& body,
                                                const std::string& domain, const std::vector<std::size_t>& idxs,
                                                Outcomes& out);
    boost::asio::awaitable<bool> probe_domain(const std::string& domain, const char* why,
                                              policy::StoredDestination& known);
    boost::asio::awaitable<void> after_attempts(const store::Envelope& env, const std::string& domain,
                                                const std::vector<std::size_t>& idxs, Outcomes& out,
                                                const policy::DestinationFacts& facts, const policy::MessageFacts& msg,
                                                const policy::Plan& plan, bool probed);
    // gather.cpp: nullopt when every recipient already has its outcome (route or store failure)
    boost::asio::awaitable<std::optional<Gathered>> gather_facts(const store::Envelope& env, const std::string& body,
                                                                 const std::string& domain,
                                                                 const std::vector<std::size_t>& idxs, Outcomes& out);
    boost::asio::awaitable<void> gather_tlsa(Gathered& g, const std::vector<std::string>& hosts);

    // attempt.cpp
    boost::asio::awaitable<void> deliver_to(const store::Envelope& env, const std::string& body, const Route& route,
                                            const std::vector<std::size_t>& idxs, Outcomes& out,
                                            const AttemptPlan& plan);
    // TLS-RPT: one new session's outcome (tlsrpt_step.hpp), when the plan records them.
    void record_tls(const AttemptPlan& plan, const policy::PlannedHost& ph, const std::string& address,
                    const SessionError* err, const SmtpClient* client);
    // One delivery log line; route: the [[delivery.routes]] name used ("" when none applied).
    void log_attempt(const store::Envelope& env, std::size_t idx, const std::string& route, const std::string& host,
                     const std::string& address, tls::Level level, const std::vector<std::string>& why,
                     const tls::PeerFacts* facts, const Classified& c, std::string_view result = {});
};

}  // namespace mailward::delivery
