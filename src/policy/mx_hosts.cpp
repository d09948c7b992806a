// MX host facts, domain capability, MTA-STS mx patterns (RFC 8461 section 4.1) and the host
// filter for partial-TLS domains. Inputs are the prober's and the resolver's, trusted as parsed.
#include "policy/mx_hosts.hpp"

#include <algorithm>

namespace mailward::policy {
namespace {

bool iequal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

}  // namespace

std::vector<MxFact> facts_from_evidence(const std::vector<MxEvidence>& evidence) {
    std::vector<MxFact> out;
    for (const auto& e : evidence) {
        const auto level = tls::parse_level(e.level).value_or(tls::Level::none);
        auto it = std::find_if(out.begin(), out.end(), [&](const MxFact& f) { return f.host == e.host; });
        if (it == out.end()) out.push_back({e.host, level});
        else it->level = std::min(it->level.value_or(level), level);
    }
    return out;
}

DomainCapability capability_of(std::span<const MxFact> hosts) {
    if (hosts.empty()) return DomainCapability::unknown;
    std::size_t tls = 0;
    for (const auto& h : hosts) {
        if (!h.level) return DomainCapability::unknown;
        if (*h.level >= tls::Level::encrypt) ++tls;
    }
    if (tls == hosts.size()) return DomainCapability::tls_capable;
    return tls == 0 ? DomainCapability::no_tls : DomainCapability::partial_tls;
}

bool mx_pattern_matches(std::string_view pattern, std::string_view host) {
    // A final dot (fully qualified form) is not part of the comparison.
    if (!pattern.empty() && pattern.back() == '.') pattern.remove_suffix(1);
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);
    if (pattern.empty() || host.empty()) return false;
    if (pattern.substr(0, 2) != "*.") return iequal(pattern, host);
    const auto suffix = pattern.substr(1);  // ".example.com"
    const auto dot = host.find('.');
    if (dot == std::string_view::npos || dot == 0) return false;  // the wildcard covers one whole label
    return iequal(host.substr(dot), suffix);
}

std::vector<std::string> usable_hosts(std::span<const MxFact> hosts, const Decision& d) {
    const auto floor = std::max(d.level, tls::Level::encrypt);
    std::vector<std::string> out;
    for (const auto& h : hosts) {
        if (!d.mx_patterns.empty() && std::none_of(d.mx_patterns.begin(), d.mx_patterns.end(),
                                                   [&](const std::string& p) { return mx_pattern_matches(p, h.host); }))
            continue;
        if (d.only_tls_hosts && h.level && *h.level < floor) continue;
        out.push_back(h.host);
    }
    return out;
}

}  // namespace mailward::policy
