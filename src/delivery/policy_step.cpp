// Per destination domain, before and after the SMTP attempts: the route (RFC 5321 section 5), what
// is known of the domain (learned level and per-MX evidence, the admin override), learning by
// probing every MX (first contact of a sender who must not go in the clear; again on a schedule),
// decide() (src/policy: static policy, learned level, REQUIRETLS RFC 8689, TLS-Required: No, the
// sender mode) and its action: deliver (only via the hosts it allows), escrow (held as
// awaiting_escrow until the escrow issue seals it), bounce, or defer. After a TLS failure to a
// domain known to do TLS: an incident with the raw evidence, a warning "possible STARTTLS
// downgrade attack" (or "certificate changed"), an immediate re-probe, and decide() again for
// the sender mode's answer (defer, escrow after escrow_after, bounce at the queue lifetime).
#include <algorithm>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "common/blocking.hpp"
#include "common/log_escape.hpp"
#include "common/timefmt.hpp"
#include "delivery/engine_impl.hpp"
#include "policy/decide.hpp"
#include "policy/learned.hpp"
#include "policy/mx_hosts.hpp"

namespace mailward::delivery {
namespace asio = boost::asio;
using Clock = std::chrono::system_clock;

namespace {

// How long a probe stays fresh: domains doing TLS are re-probed daily; the others hourly, so that
// a domain that starts offering TLS is forced soon.
constexpr auto kReprobeTls = std::chrono::hours(24);
constexpr auto kReprobeOther = std::chrono::hours(1);

// What the store knows about a domain, read in one blocking step.
struct Known {
    bool ok = true;
    std::string error;
    std::optional<policy::LearnedPolicy> learned;
    std::optional<policy::Override> override;  // active or expired (decide() says which)
    bool tls_required_no = false;               // the message has "TLS-Required: No"
    policy::TlsOptionalRight tls_optional;      // and whether its sender may use it
};

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
    auto now = Clock::now();
    const auto mode = config::parse_sender_mode(env.sender_mode).value_or(cfg.policy.default_mode);
    auto hold = [&](const Classified& c, tls::Level level, const std::vector<std::string>& why, bool escrow) {
        for (auto i : idxs) {
            log_attempt(env, i, "", "", level, why, nullptr, c, escrow ? "awaiting-escrow" : "");
            RcptOutcome oc{c};
            oc.escrow = escrow;
            out[i] = oc;
        }
    };

    // 1. The route: MX hosts in order (needed by decide() for REQUIRETLS and by the host filter).
    std::string detail;
    auto route = co_await resolve_route(resolver, domain, rng, detail);
    if (!route) {
        Evidence ev;
        ev.route_error = route.error();
        ev.route_detail = detail;
        auto c = classify(ev);
        for (auto i : idxs) {
            log_attempt(env, i, "", "", tls::Level::may, {}, nullptr, c);
            out[i] = RcptOutcome{c};
        }
        co_return;
    }

    // 2. What is known.
    auto& policy_store = store.policy();
    Known known;
    auto& users = store.users();
    const bool tls_required_no = policy::has_tls_required_no(body);
    const bool trusted_may = cfg.policy.tls_optional_trusted_networks;
    auto load = [&policy_store, &users, &domain, &env, tls_required_no, trusted_may, now]() {
        Known k;
        k.tls_required_no = tls_required_no;
        if (tls_required_no) {
            // The right is read at each attempt: an administrator who takes it back stops it for
            // messages already queued.
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
        auto l = policy::load_learned(policy_store, domain);
        auto o = l ? policy::load_override(policy_store, domain, now) : Result<std::optional<policy::Override>>();
        if (!l || !o) {
            k.ok = false;
            k.error = (!l ? l.error() : o.error()).message();
            return k;
        }
        k.learned = std::move(*l);
        if (!*o) {  // an expired override still deserves a mention among the reasons
            if (auto all = policy_store.overrides()) {
                for (const auto& so : *all) {
                    if (so.domain != domain) continue;
                    if (auto conv = policy::from_store(so)) k.override = *conv;
                }
            }
        } else {
            k.override = std::move(*o);
        }
        return k;
    };
    known = co_await common::run_blocking<Known>(blocking, load);
    if (!known.ok) {
        spdlog::error("policy: cannot read what is known of {}: {}", domain, known.error);
        hold(classify_store_unreadable(known.error), tls::Level::encrypt, {}, false);
        co_return;
    }

    // 3. Learning: probe every MX on first contact of a sender who must not go in the clear, and
    // again when the last probe is stale. The ratchet only raises; a probe that shows a downgrade
    // of a domain learned at encrypt or better records incidents and changes nothing else.
    std::vector<policy::MxEvidence> evidence = known.learned ? known.learned->evidence : std::vector<policy::MxEvidence>{};
    bool probed = false;
    auto probe = [&](const char* why) -> asio::awaitable<void> {
        if (!prober) co_return;
        auto verdict = co_await prober->probe(domain);
        probed = true;
        now = Clock::now();
        if (!verdict.ok) {
            spdlog::info("policy: probing {} ({}) did not finish", domain, why);
            co_return;
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
        auto& ps = policy_store;
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
            co_return;
        }
        for (const auto& i : incidents) {
            count_incident(i.kind);
            spdlog::warn("policy: {} on {}: {}", i.kind == store::to_string(store::IncidentKind::certificate_changed)
                                                      ? "certificate changed"
                                                      : "possible STARTTLS downgrade attack",
                         domain, i.detail);
        }
        if (downgrade) co_return;  // keep the evidence that was learned
        if (*r) spdlog::info("policy: learned {} for {} ({}: every MX host probed)", level, domain, why);
        auto reload = [&ps, &domain]() { return policy::load_learned(ps, domain); };
        if (auto l = co_await common::run_blocking<Result<std::optional<policy::LearnedPolicy>>>(blocking, reload);
            l && *l) {
            known.learned = **l;
            evidence = known.learned->evidence;
        }
    };
    if (!known.learned && mode != config::SenderMode::opportunistic) {
        co_await probe("first contact");
    } else if (known.learned) {
        const auto fresh = known.learned->level >= tls::Level::encrypt ? kReprobeTls : kReprobeOther;
        const auto last = known.learned->last_probe.value_or(known.learned->last_confirmed);
        if (now - last > fresh) co_await probe("scheduled re-probe");
    }

    // 4. decide().
    policy::PolicyInputs in;
    in.domain = domain;
    in.static_level = policy::static_level(cfg.policy, domain);
    std::string sts_status;
    if (mta_sts && cfg.policy.mta_sts && !domain.empty() && domain.front() != '[') {
        auto look = co_await mta_sts->get(domain, now);
        in.mta_sts = look.policy;
        sts_status = look.status;
    }
    if (preload) in.preload = preload->level_for(domain, now);
    in.learned = known.learned;
    in.requiretls = env.requiretls;
    in.mx_authenticated = route->mx_secure;
    in.tls_required_no = known.tls_required_no;
    in.tls_optional = known.tls_optional;
    in.mode = mode;
    in.override = known.override;
    in.escrow_after = cfg.policy.escrow_after;
    in.max_queue_lifetime = cfg.delivery.max_queue_lifetime;
    const auto facts = policy::facts_from_evidence(evidence);
    auto capability = policy::capability_of(facts);
    if (facts.empty() && known.learned && known.learned->level >= tls::Level::encrypt) {
        capability = policy::DomainCapability::tls_capable;  // learned before per-MX evidence was kept
    }
    auto d = policy::decide(in, policy::BeforeAttempt{capability}, now);
    if (!sts_status.empty()) d.reasons.insert(d.reasons.begin(), sts_status);
    if (preload && preload->expired(now) && preload->domains.count(domain)) {
        d.reasons.insert(d.reasons.begin(), "preload list " + preload->source + " has expired: ignored");
    }
    if (probed && d.action == policy::Action::defer && d.probe_needed) {
        d.reasons.push_back("the probe did not finish: retry later");
    }

    if (auto held = classify_decision(d)) {
        hold(*held, d.level, d.reasons, d.action == policy::Action::escrow);
        co_return;
    }

    // 5. The attempts, only via the hosts the decision allows.
    AttemptPlan plan;
    plan.level = d.level;
    plan.why = d.reasons;
    std::vector<policy::MxFact> hop_facts;
    for (const auto& hop : route->hops) {
        policy::MxFact f{hop.host, std::nullopt};
        for (const auto& known_fact : facts) {
            if (known_fact.host == hop.host) f.level = known_fact.level;
        }
        hop_facts.push_back(std::move(f));
    }
    plan.hosts = policy::usable_hosts(hop_facts, d);
    if (known.learned && known.learned->level >= tls::Level::encrypt && d.level >= tls::Level::encrypt) {
        for (const auto& e : evidence) {
            if (!e.spki_sha256.empty()) plan.known_spki[e.host].push_back(e.spki_sha256);
        }
    }
    if (plan.hosts.empty()) {
        const auto c = classify_no_allowed_host(domain, d);
        for (auto i : idxs) {
            log_attempt(env, i, "", "", d.level, d.reasons, nullptr, c);
            out[i] = RcptOutcome{c};
        }
    } else {
        co_await deliver_to(env, body, *route, idxs, out, plan);
    }

    // 6. After the attempts. A delivery at a learned level of encrypt or better confirms it.
    const bool learned_tls = known.learned && known.learned->level >= tls::Level::encrypt;
    now = Clock::now();
    bool confirmed = false, incident_recorded = false;
    std::vector<std::size_t> tls_failed;
    for (auto i : idxs) {
        auto it = out.find(i);
        if (it == out.end()) continue;
        if (it->second.c.outcome == Outcome::delivered && learned_tls && !confirmed) {
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
    // A failure is a downgrade when the session fell short of what was learned (not merely of a
    // stricter level asked by another source, such as a static verify for a self-signed MX).
    const auto& first = out[tls_failed.front()];
    bool downgrade = false;
    if ((learned_tls || capability == policy::DomainCapability::tls_capable) && first.tls_failure) {
        const SessionError& e = *first.tls_failure;
        const tls::Level expected = learned_tls ? known.learned->level : tls::Level::encrypt;
        std::string short_of;
        downgrade = e.tls_fault == TlsFault::certificate_changed || !e.tls || !tls::meets(expected, *e.tls, short_of);
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
            if (!probed) co_await probe("after a TLS failure");
        }
        incident_recorded = true;
    }

    // What the sender's mode says now that TLS failed: defer, escrow, or bounce; never plaintext.
    auto after = policy::decide(in, policy::AfterTlsFailure{{}, env.received_at}, now);
    for (auto i : tls_failed) {
        auto& oc = out[i];
        classify_after_tls_failure(oc.c, after, incident_recorded);
        if (after.action == policy::Action::escrow) oc.escrow = true;
    }
}

}  // namespace mailward::delivery
