// What the delivery engine learns from a probe (docs/design.md, "The learned ratchet"): a DomainReport
// mapped to a ProbeVerdict - per-address evidence for every MX host that answered, and the level
// every one of them meets (policy::hosts_verdict, the planner's rule; RFC 7672, RFC 3207). A host
// that could not be reached is not evidence either way. The engine (src/delivery, above this library) owns a
// DomainProber built from ProbeOptions; policy must not know probe's report types.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "dns/resolver.hpp"
#include "probe/probe.hpp"
#include "store/policy_store.hpp"
#include "tls/client.hpp"

namespace mailward::probe {

// What probing every MX of a domain concluded.
struct ProbeVerdict {
    bool ok = false;                          // the probe ran (DNS worked, at least one host answered)
    tls::Level level = tls::Level::none;      // the strongest level every MX address that answered meets
    std::string report;                       // JSON evidence
    std::vector<store::MxEvidence> evidence;  // per MX address that answered
};

// The verdict of rep: ok when routing worked and at least one host answered; level is the weakest
// answering host's level (none when no host answered); report is the JSON evidence naming it.
// seen_at stamps every evidence row.
ProbeVerdict to_verdict(const DomainReport& rep, std::chrono::system_clock::time_point seen_at);

// The delivery engine's prober: probes every MX of a domain with the options it was made with and
// maps the report with to_verdict. resolver must outlive it.
class DomainProber {
  public:
    DomainProber(dns::Resolver& resolver, tls::ClientContext ctx, ProbeOptions opts);
    boost::asio::awaitable<ProbeVerdict> probe(std::string domain) const;

  private:
    dns::Resolver* resolver_;
    tls::ClientContext ctx_;
    ProbeOptions opts_;
};

}  // namespace mailward::probe
