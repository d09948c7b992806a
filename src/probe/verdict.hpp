// What the delivery engine learns from a probe (docs/design.md, "The learned ratchet"): a DomainReport mapped to
// the engine's ProbeVerdict - per-address evidence for every MX host that answered, and the level
// every one of them meets (RFC 7672, RFC 3207). A host that could not be reached is not evidence
// either way. This lives in probe, not in policy: probe sits above delivery and policy (it links
// both), and policy must not know probe's report types.
#pragma once

#include <chrono>

#include "delivery/engine.hpp"
#include "probe/probe.hpp"

namespace mailward::probe {

// The verdict of rep: ok when routing worked and at least one host answered; level is the weakest
// answering host's level (none when no host answered); report is the JSON evidence naming it.
// seen_at stamps every evidence row.
delivery::ProbeVerdict to_verdict(const DomainReport& rep, std::chrono::system_clock::time_point seen_at);

// The engine's prober (delivery::Engine::set_prober): probes every MX of a domain with opts and
// maps the report with to_verdict. resolver must outlive the engine.
delivery::DomainProber engine_prober(dns::Resolver& resolver, tls::ClientContext ctx, ProbeOptions opts);

}  // namespace mailward::probe
