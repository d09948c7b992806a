// plan(): facts -> decide() inputs, the capability rule, the reasons decide() does not know of
// (MTA-STS status, an expired preload list, a probe that did not finish), and the per-host plan:
// the MX hosts the decision allows, each with its own level and TLSA records (RFC 7672 2.2), its
// known keys, or why it is refused (RFC 7672 2.1.1). Pure; see plan.hpp.
#include "policy/plan.hpp"

#include <algorithm>

namespace mailward::policy {
namespace {

using tls::Level;

// DANE applies to a host: DANE on, a DNSSEC-secure MX set, and secure address answers.
bool dane_applies(const DestinationFacts& d, const MxHostFacts& h) {
    return d.dane && d.route.mx_secure && h.has_addresses && !h.address_lookup_failed && h.addresses_secure;
}

// DANE for the whole domain: a secure MX set where every host has secure TLSA records.
bool dane_for_every_host(const DestinationFacts& d) {
    if (!d.dane || !d.route.mx_secure || d.route.hosts.empty()) return false;
    return std::all_of(d.route.hosts.begin(), d.route.hosts.end(), [&](const MxHostFacts& h) {
        return dane_applies(d, h) && h.tlsa.state == TlsaFact::State::records;
    });
}

PolicyInputs inputs(const DestinationFacts& d, const MessageFacts& m) {
    PolicyInputs in;
    in.domain = d.domain;
    in.static_level = d.static_level;
    in.learned = d.learned;
    in.dane_usable = dane_for_every_host(d);
    in.mta_sts = d.mta_sts.policy;
    in.preload = d.preload.level;
    in.requiretls = m.requiretls;
    in.mx_authenticated = d.route.mx_secure;
    in.tls_required_no = m.tls_required_no;
    in.tls_optional = m.tls_optional;
    in.mode = m.mode;
    in.override = d.override;
    in.escrow_after = d.escrow_after;
    in.max_queue_lifetime = d.max_queue_lifetime;
    in.route = d.routed;
    return in;
}

bool learned_tls(const DestinationFacts& d) { return d.learned && d.learned->level >= Level::encrypt; }

std::vector<MxFact> evidence_facts(const DestinationFacts& d) {
    return d.learned ? facts_from_evidence(d.learned->evidence) : std::vector<MxFact>{};
}

PlannedHost plan_host(const DestinationFacts& d, const MxHostFacts& h, const Decision& decision) {
    PlannedHost p;
    p.host = h.host;
    p.level = decision.level;
    p.why = decision.reasons;
    if (learned_tls(d) && decision.level >= Level::encrypt) {
        for (const auto& e : d.learned->evidence) {
            if (e.host == h.host && !e.spki_sha256.empty()) p.known_spki.push_back(e.spki_sha256);
        }
    }
    if (!h.has_addresses) {
        p.refused = HostRefusal::no_addresses;
        p.refusal_detail = h.error;
        return p;
    }
    if (d.dane && d.route.mx_secure && h.address_lookup_failed) {
        // RFC 7672 2.1.1: never used with the addresses that did resolve (no TLSA: a downgrade).
        p.refused = HostRefusal::address_lookup_failed;
        p.refusal_detail = h.error;
        return p;
    }
    if (!dane_applies(d, h)) return p;
    switch (h.tlsa.state) {
        case TlsaFact::State::records:
            p.level = strictest(p.level, Level::dane);
            p.tlsa = h.tlsa.records;
            p.why.push_back("DANE: secure TLSA records for " + h.host);
            break;
        case TlsaFact::State::lookup_failed:
            p.level = Level::dane;
            p.refused = HostRefusal::tlsa_lookup_failed;
            p.refusal_detail = h.tlsa.error;
            break;
        case TlsaFact::State::none:
        case TlsaFact::State::not_looked_up: break;
    }
    return p;
}

}  // namespace

TlsaFact tlsa_fact(const Result<dns::TlsaAnswer>& answer) {
    TlsaFact f;
    if (!answer) {
        if (answer.error() == dns::DnsErrc::nxdomain) {
            f.state = TlsaFact::State::none;
        } else {
            f.state = TlsaFact::State::lookup_failed;
            f.error = answer.error().message();
        }
        return f;
    }
    f.state = TlsaFact::State::none;
    if (answer->security != dns::Security::secure) return f;
    for (const auto& r : answer->records) {
        if (r.usage == 2 || r.usage == 3) f.records.push_back(r);
    }
    if (!f.records.empty()) f.state = TlsaFact::State::records;
    return f;
}

PreloadFact preload_fact(const PreloadList* list, const std::string& domain,
                         std::chrono::system_clock::time_point now) {
    PreloadFact f;
    if (!list) return f;
    f.level = list->level_for(domain, now);
    f.expired_entry = list->expired(now) && list->domains.count(domain) > 0;
    f.source = list->source;
    return f;
}

DomainCapability capability(const DestinationFacts& d) {
    const auto facts = evidence_facts(d);
    if (!facts.empty()) return capability_of(facts);
    if (learned_tls(d)) return DomainCapability::tls_capable;  // learned before evidence was kept
    if (!d.observed.empty()) return capability_of(d.observed);
    return DomainCapability::unknown;
}

Plan plan(const DestinationFacts& d, const MessageFacts& m, std::chrono::system_clock::time_point now) {
    Plan p;
    p.capability = capability(d);
    p.decision = decide(inputs(d, m), BeforeAttempt{p.capability}, now);
    auto& reasons = p.decision.reasons;
    if (!d.mta_sts.status.empty()) reasons.insert(reasons.begin(), d.mta_sts.status);
    if (d.preload.expired_entry)
        reasons.insert(reasons.begin(), "preload list " + d.preload.source + " has expired: ignored");
    if (d.probe_ran && p.decision.action == Action::defer && p.decision.probe_needed)
        reasons.push_back("the probe did not finish: retry later");
    p.confirms_learned = learned_tls(d);
    if (learned_tls(d)) p.downgrade_floor = d.learned->level;
    else if (p.capability == DomainCapability::tls_capable) p.downgrade_floor = Level::encrypt;

    // The hosts the decision allows (MTA-STS mx patterns, only the TLS hosts of a partial domain).
    const auto known = evidence_facts(d);
    std::vector<MxFact> route_facts;
    for (const auto& h : d.route.hosts) {
        MxFact f{h.host, std::nullopt};
        for (const auto& k : known) {
            if (k.host == h.host) f.level = k.level;
        }
        route_facts.push_back(std::move(f));
    }
    const auto allowed = usable_hosts(route_facts, p.decision);
    for (std::size_t i = 0; i < d.route.hosts.size(); ++i) {
        const auto& h = d.route.hosts[i];
        if (std::find(allowed.begin(), allowed.end(), h.host) == allowed.end()) continue;
        p.hosts.push_back(plan_host(d, h, p.decision));
        p.hosts.back().index = i;
        if (p.decision.action == Action::deliver && p.hosts.back().refused == HostRefusal::none && dane_applies(d, h) &&
            h.tlsa.state == TlsaFact::State::not_looked_up)
            p.tlsa_wanted.push_back(h.host);
    }
    return p;
}

Decision plan_after_tls_failure(const DestinationFacts& d, const MessageFacts& m,
                                std::chrono::system_clock::time_point now) {
    return decide(inputs(d, m), AfterTlsFailure{m.first_failure, m.received_at}, now);
}

std::optional<TlsRequiredNoEffect> tls_required_no_of(const MessageFacts& m) {
    if (!m.tls_required_no) return std::nullopt;
    return tls_required_no_effect(m.requiretls, m.tls_optional);
}

HostsVerdict hosts_verdict(const std::vector<MxFact>& per_address) {
    HostsVerdict v;
    std::vector<MxFact> per_host;
    std::optional<Level> weakest;
    for (const auto& a : per_address) {
        const Level l = a.level.value_or(Level::none);
        weakest = weakest ? std::min(*weakest, l) : l;
        auto it = std::find_if(per_host.begin(), per_host.end(), [&](const MxFact& f) { return f.host == a.host; });
        if (it == per_host.end()) per_host.push_back({a.host, l});
        else it->level = std::min(*it->level, l);
    }
    v.level = weakest.value_or(Level::none);
    v.capability = capability_of(per_host);
    return v;
}

std::string probe_due(const std::optional<LearnedPolicy>& learned, config::SenderMode mode,
                      std::chrono::system_clock::time_point now) {
    // Domains doing TLS are re-probed daily; the others hourly, so that a domain that starts
    // offering TLS is forced soon.
    constexpr auto kReprobeTls = std::chrono::hours(24);
    constexpr auto kReprobeOther = std::chrono::hours(1);
    if (!learned) return mode != config::SenderMode::opportunistic ? "first contact" : "";
    const auto fresh = learned->level >= Level::encrypt ? kReprobeTls : kReprobeOther;
    const auto last = learned->last_probe.value_or(learned->last_confirmed);
    return now - last > fresh ? "scheduled re-probe" : "";
}

}  // namespace mailward::policy
