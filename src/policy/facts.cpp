// DestinationFacts from what the engine read and from what `policy simulate` has (see facts.hpp).
#include "policy/facts.hpp"

namespace mailward::policy {
namespace {

DestinationFacts common_facts(const config::Config& cfg, const std::string& domain, const PreloadList* preload,
                              std::chrono::system_clock::time_point now) {
    DestinationFacts d;
    d.domain = domain;
    d.static_level = static_level(cfg.policy, domain);
    d.preload = preload_fact(preload, domain, now);
    d.dane = cfg.policy.dane;
    d.escrow_after = cfg.policy.escrow_after;
    d.max_queue_lifetime = cfg.delivery.max_queue_lifetime;
    if (const auto* r = config::find_route(cfg.delivery.routes, domain)) {
        RouteInput in;
        in.name = r->name;
        if (!r->tls.empty()) in.floor = tls::parse_level(r->tls);
        d.routed = std::move(in);
    }
    return d;
}

}  // namespace

Result<StoredDestination> load_destination(store::PolicyStore& s, const std::string& domain,
                                           std::chrono::system_clock::time_point now) {
    StoredDestination out;
    auto l = load_learned(s, domain);
    if (!l) return Result<StoredDestination>(boost::system::in_place_error, l.error());
    auto o = load_override(s, domain, now);
    if (!o) return Result<StoredDestination>(boost::system::in_place_error, o.error());
    out.learned = std::move(*l);
    if (*o) {
        out.override = std::move(*o);
    } else if (auto all = s.overrides()) {  // an expired override still deserves a mention
        for (const auto& so : *all) {
            if (so.domain != domain) continue;
            if (auto conv = from_store(so)) out.override = *conv;
        }
    }
    return out;
}

DestinationFacts engine_facts(const config::Config& cfg, const EngineReading& r,
                              std::chrono::system_clock::time_point now) {
    auto d = common_facts(cfg, r.domain, r.preload, now);
    d.learned = r.stored.learned;
    d.override = r.stored.override;
    d.mta_sts = r.mta_sts;
    d.route = r.route;
    d.probe_ran = r.probe_ran;
    return d;
}

Result<DestinationFacts> simulation_facts(const config::Config& cfg, const SimulationRecord& r,
                                          std::chrono::system_clock::time_point now) {
    auto d = common_facts(cfg, r.domain, r.preload, now);
    if (r.learned) {
        auto conv = from_store(*r.learned);
        if (!conv) return Result<DestinationFacts>(boost::system::in_place_error, conv.error());
        d.learned = std::move(*conv);
    }
    if (r.override) {
        if (auto conv = from_store(*r.override)) d.override = std::move(*conv);
    }
    if (cfg.policy.mta_sts) d.mta_sts = r.mta_sts;
    for (const auto& [host, level] : r.observed) d.observed.push_back({host, level});
    if (r.route) d.route = *r.route;
    return d;
}

}  // namespace mailward::policy
