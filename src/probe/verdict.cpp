// A probe's DomainReport mapped to the delivery engine's ProbeVerdict, and the engine's prober: see
// verdict.hpp.
#include "probe/verdict.hpp"

#include <nlohmann/json.hpp>

#include "policy/plan.hpp"

namespace mailward::probe {

ProbeVerdict to_verdict(const DomainReport& rep, std::chrono::system_clock::time_point seen_at) {
    ProbeVerdict v;
    std::vector<policy::MxFact> answered;  // the level each answering address met
    for (const auto& h : rep.hosts) {
        if (!h.connected) continue;
        store::MxEvidence e;
        e.host = h.host;
        e.address = h.address;
        e.level = std::string(tls::to_string(h.level));
        e.starttls = h.starttls_offered;
        e.protocol = h.tls.protocol;
        e.cipher = h.tls.cipher;
        e.chain_valid = h.tls.chain_valid;
        e.name_matched = h.tls.name_matched;
        e.spki_sha256 = h.tls.spki_sha256;
        e.dane_matched = h.tls.dane_matched;
        e.seen_at = seen_at;
        v.evidence.push_back(std::move(e));
        answered.push_back({h.host, h.level});
    }
    // The level itself is the planner's rule (policy::hosts_verdict), as for `mailward check`; the
    // report names the first answering address at that level (the weakest).
    v.ok = rep.error.empty() && !answered.empty();
    v.level = policy::hosts_verdict(answered).level;
    std::string weakest_host;
    for (const auto& e : v.evidence) {
        if (e.level != tls::to_string(v.level)) continue;
        weakest_host = e.host + " [" + e.address + "]";
        break;
    }
    nlohmann::json report = {{"verdict", tls::to_string(v.level)},
                             {"weakest", weakest_host},
                             {"hosts", rep.hosts.size()},
                             {"answered", v.evidence.size()},
                             {"error", rep.error}};
    v.report = report.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return v;
}

DomainProber::DomainProber(dns::Resolver& resolver, tls::ClientContext ctx, ProbeOptions opts)
    : resolver_(&resolver), ctx_(std::move(ctx)), opts_(std::move(opts)) {}

boost::asio::awaitable<ProbeVerdict> DomainProber::probe(std::string domain) const {
    auto rep = co_await probe_domain(*resolver_, ctx_, std::move(domain), opts_);
    co_return to_verdict(rep, std::chrono::system_clock::now());
}

}  // namespace mailward::probe
