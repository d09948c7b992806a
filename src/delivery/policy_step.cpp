// Per destination domain: gather the facts (gather.cpp), policy::plan() (src/policy: static
// policy, learned level, DANE, MTA-STS, preload, REQUIRETLS RFC 8689, TLS-Required: No, the sender
// mode) and its action: deliver (execute the plan's per-host attempts, attempt.cpp), escrow (held
// as awaiting_escrow), bounce, or defer. Learning by probing every MX (first contact of a sender
// who must not go in the clear; again on a schedule). After a TLS failure to a domain known to do
// TLS: an incident with the raw evidence, a warning "possible STARTTLS downgrade attack" (or
// "certificate changed"), an immediate re-probe, and policy::plan_after_tls_failure() for the
// sender mode's answer (defer, escrow after escrow_after, bounce at the queue lifetime).
#include <algorithm>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "common/blocking.hpp"
#include "common/log_escape.hpp"
#include "common/metrics.hpp"
#include "common/timefmt.hpp"
#include "delivery/engine_impl.hpp"
#include "policy/learned.hpp"
#include "policy/plan.hpp"

namespace mailward::delivery {
namespace asio = boost::asio;
using Clock = std::chrono::system_clock;

namespace {

std::string raw_of(const SessionError& e) {
    std::string raw = e.raw;
    if (e.reply) {
        for (const auto& l : e.reply->lines) raw += std::to_string(e.reply->code) + " " + l + "\n";
    }
    if (e.ec) raw += "error: " + e.ec.message() + "\n";
    if (raw.empty()) raw = e.detail;
    return raw;
}

}  // namespace

asio::awaitable<void> Engine::Impl::deliver_domain(const store::Envelope& env, const std::string& body,
                                                   const std::string& domain, const std::vector<std::size_t>& idxs,
                                                   Outcomes& out) {
    // 1. Gather the facts (route, store, probe, MTA-STS, preload).
    auto g = co_await gather_facts(env, body, domain, idxs, out);
    if (!g) co_return;

    // 2. Plan; the TLSA answers of the hosts it would use are facts too: gather them, plan again.
    auto facts = policy::engine_facts(cfg, g->reading, g->now);
    auto plan = policy::plan(facts, g->message, g->now);
    if (!plan.tlsa_wanted.empty()) {
        co_await gather_tlsa(*g, plan.tlsa_wanted);
        facts = policy::engine_facts(cfg, g->reading, g->now);
        plan = policy::plan(facts, g->message, g->now);
    }
    const auto& d = plan.decision;
    if (auto held = classify_decision(d)) {
        for (auto i : idxs) {
            const bool escrow = d.action == policy::Action::escrow;
            log_attempt(env, i, g->route.via, "", "", d.level, d.reasons, nullptr, *held,
                        escrow ? "awaiting-escrow" : "");
            RcptOutcome oc{*held};
            oc.escrow = escrow;
            oc.level = d.level;
            out[i] = oc;
        }
        co_return;
    }

    // 3. Execute: the attempts, only via the hosts the plan allows.
    if (plan.hosts.empty()) {
        const auto c = classify_no_allowed_host(domain, d);
        for (auto i : idxs) {
            log_attempt(env, i, g->route.via, "", "", d.level, d.reasons, nullptr, c);
            out[i] = RcptOutcome{c}.with_tls(d.level, nullptr);
        }
    } else {
        AttemptPlan attempt;  // named: g++ 12 may free a co_await's temporaries early
        attempt.hosts = plan.hosts;
        attempt.domain = domain;
        attempt.sts = g->reading.mta_sts.policy;
        attempt.record_tls = tlsrpt != nullptr && g->route.via.empty();
        co_await deliver_to(env, body, g->route, idxs, out, attempt);
    }

    // The route used, for the main log's outcome line.
    if (!g->route.via.empty()) {
        for (auto i : idxs)
            if (auto it = out.find(i); it != out.end()) it->second.route = g->route.via;
    }

    // 4. After the attempts: confirmation, the downgrade defence, the answer to a TLS failure.
    co_await after_attempts(env, domain, idxs, out, facts, g->message, plan, g->reading.probe_ran);
}

asio::awaitable<bool> Engine::Impl::probe_domain(const std::string& domain, const char* why,
                                                 policy::StoredDestination& known) {
    // The ratchet only raises; a probe that shows a downgrade of a domain learned at encrypt or
    // better records incidents and changes nothing else.
    if (!prober) co_return false;
    auto verdict = co_await prober->probe(domain);
    const auto now = Clock::now();
    common::metrics::inc("mailward_probes_total",
                         "Domain probes (learning), by verdict: the TLS level found, or unfinished.", "verdict",
                         verdict.ok ? tls::to_string(verdict.level) : std::string_view("unfinished"));
    if (!verdict.ok) {
        spdlog::info("policy: probing {} ({}) did not finish", domain, why);
        co_return true;
    }
    std::vector<policy::Incident> incidents;
    bool downgrade = false;
    if (known.learned) {
        for (auto& i : policy::downgrade_incidents(*known.learned, verdict.evidence, now)) {
            downgrade = true;
            if (recent_incidents.is_new(i)) incidents.push_back(std::move(i));
        }
    }
    const std::string level(tls::to_string(verdict.level));
    auto& ps = store.policy();
    auto record = [&ps, &domain, &level, &verdict, &incidents, downgrade, now]() -> Result<bool> {
        if (auto r = ps.record_probe(domain, level, verdict.report, now); !r) {
            return Result<bool>(boost::system::in_place_error, r.error());
        }
        for (const auto& i : incidents) {
            if (auto r = ps.add_incident(i); !r) return Result<bool>(boost::system::in_place_error, r.error());
        }
        if (downgrade) return false;
        return ps.raise(domain, level, verdict.evidence, verdict.report, now);
    };
    auto r = co_await common::run_blocking<Result<bool>>(blocking, record);
    if (!r) {
        spdlog::error("policy: cannot record the probe of {}: {}", domain, r.error().message());
        co_return true;
    }
    for (const auto& i : incidents) {
        count_incident(i.kind);
        spdlog::warn("policy: {} on {}: {}",
                     i.kind == store::to_string(store::IncidentKind::certificate_changed)
                         ? "certificate changed"
                         : "possible STARTTLS downgrade attack",
                     domain, i.detail);
    }
    if (downgrade) co_return true;  // keep the evidence that was learned
    if (*r) spdlog::info("policy: learned {} for {} ({}: every MX host probed)", level, domain, why);
    auto reload = [&ps, &domain]() { return policy::load_learned(ps, domain); };
    if (auto l = co_await common::run_blocking<Result<std::optional<policy::LearnedPolicy>>>(blocking, reload);
        l && *l) {
        known.learned = **l;
    }
    co_return true;
}

asio::awaitable<void> Engine::Impl::after_attempts(const store::Envelope& env, const std::string& domain,
                                                   const std::vector<std::size_t>& idxs, Outcomes& out,
                                                   const policy::DestinationFacts& facts,
                                                   const policy::MessageFacts& msg, const policy::Plan& plan,
                                                   bool probed) {
    // A routed domain: the sessions were with the route's next hop, which says nothing of the
    // domain's own MX hosts - no confirmation, no downgrade incident; only the answer below.
    const bool routed = facts.routed.has_value();
    // A delivery at a learned level of encrypt or better confirms it.
    auto& policy_store = store.policy();
    auto now = Clock::now();
    bool confirmed = false, incident_recorded = false;
    std::vector<std::size_t> tls_failed;
    for (auto i : idxs) {
        auto it = out.find(i);
        if (it == out.end()) continue;
        if (it->second.c.outcome == Outcome::delivered && plan.confirms_learned && !confirmed && !routed) {
            confirmed = true;
            // A write transaction of its own: once a second per domain is plenty for a date
            // (at hundreds of deliveries a second, one per delivery was the bottleneck).
            const auto mono = std::chrono::steady_clock::now();
            auto& last = last_confirm[domain];
            if (last != std::chrono::steady_clock::time_point{} && mono - last < kConfirmEvery) continue;
            last = mono;
            auto confirm = [&policy_store, &domain, now]() { return policy_store.confirm(domain, {}, now); };
            co_await common::run_blocking<Result<void>>(blocking, confirm);
        }
        if (it->second.c.outcome == Outcome::tls_policy) tls_failed.push_back(i);
    }
    if (tls_failed.empty()) co_return;

    // The downgrade defence: a domain known to do TLS that now fails it is a possible attack, never
    // a reason to send in the clear. Record it with the raw evidence, say so loudly, re-probe now.
    // A failure is a downgrade when the session fell short of the plan's downgrade floor (what was
    // learned; not merely a stricter level asked by another source, such as a static verify for a
    // self-signed MX).
    const auto& first = out[tls_failed.front()];
    bool downgrade = false;
    if (plan.downgrade_floor && first.tls_failure && !routed) {
        const SessionError& e = *first.tls_failure;
        std::string short_of;
        downgrade = e.tls_fault == TlsFault::certificate_changed || !e.tls ||
                    !tls::meets(*plan.downgrade_floor, *e.tls, short_of);
    }
    if (downgrade) {
        const SessionError& e = *first.tls_failure;
        store::PolicyIncident inc;
        inc.domain = domain;
        inc.at = now;
        const auto kind = incident_kind(e);
        inc.kind = store::to_string(kind);
        inc.detail = first.c.reason;
        inc.host = first.host;
        inc.address = first.address;
        inc.raw_evidence = raw_of(e);
        if (recent_incidents.is_new(inc)) {
            count_incident(inc.kind);
            if (kind == store::IncidentKind::certificate_changed) {
                spdlog::warn("policy: certificate changed for {} at {} [{}]: {}", domain, first.host, first.address,
                             common::log_escape(first.c.reason));
            } else {
                spdlog::warn("policy: possible STARTTLS downgrade attack on {} ({}) at {} [{}]: {}", domain, inc.kind,
                             first.host, first.address, common::log_escape(first.c.reason));
            }
            auto add = [&policy_store, &inc]() { return policy_store.add_incident(inc); };
            if (auto r = co_await common::run_blocking<Result<void>>(blocking, add); !r) {
                spdlog::error("policy: cannot record the incident for {}: {}", domain, r.error().message());
            }
            if (!probed) {
                policy::StoredDestination known{facts.learned, facts.override};
                if (co_await probe_domain(domain, "after a TLS failure", known)) now = Clock::now();
            }
        }
        incident_recorded = true;
    }

    // What the sender's mode says now that TLS failed: defer, escrow, or bounce; never plaintext.
    // (The facts as planned: a re-probe above changes the next delivery's plan, not this answer.)
    const auto after = policy::plan_after_tls_failure(facts, msg, now);
    for (auto i : tls_failed) {
        auto& oc = out[i];
        classify_after_tls_failure(oc.c, after, incident_recorded);
        if (after.action == policy::Action::escrow) oc.escrow = true;
    }
}

}  // namespace mailward::delivery
