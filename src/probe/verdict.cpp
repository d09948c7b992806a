// A probe's DomainReport mapped to the delivery engine's ProbeVerdict: see verdict.hpp.
#include "probe/verdict.hpp"

#include <nlohmann/json.hpp>
#include <optional>

namespace mailward::probe {
namespace {

// A coroutine over plain parameters (not a capturing lambda: see common/blocking.hpp on g++ 12).
boost::asio::awaitable<delivery::ProbeVerdict> probe_for_engine(dns::Resolver* resolver, tls::ClientContext ctx,
                                                                ProbeOptions po, std::string domain) {
    auto rep = co_await probe_domain(*resolver, ctx, domain, po);
    co_return to_verdict(rep, std::chrono::system_clock::now());
}

}  // namespace

delivery::ProbeVerdict to_verdict(const DomainReport& rep, std::chrono::system_clock::time_point seen_at) {
    delivery::ProbeVerdict v;
    std::optional<tls::Level> weakest;
    std::string weakest_host;
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
        if (!weakest || h.level < *weakest) {
            weakest = h.level;
            weakest_host = h.host + " [" + h.address + "]";
        }
    }
    v.ok = rep.error.empty() && weakest.has_value();
    v.level = weakest.value_or(tls::Level::none);
    nlohmann::json report = {{"verdict", tls::to_string(v.level)},
                             {"weakest", weakest_host},
                             {"hosts", rep.hosts.size()},
                             {"answered", v.evidence.size()},
                             {"error", rep.error}};
    v.report = report.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return v;
}

delivery::DomainProber engine_prober(dns::Resolver& resolver, tls::ClientContext ctx, ProbeOptions opts) {
    dns::Resolver* res = &resolver;
    return [res, ctx, opts](std::string domain) { return probe_for_engine(res, ctx, opts, std::move(domain)); };
}

}  // namespace mailward::probe
