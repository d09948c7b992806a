// `mailward check DOMAIN [--json]`: probes every MX host and address of DOMAIN for TLS and prints
// the verdict (the strongest level all hosts meet, and whether the domain is TLS-capable, both as
// policy::hosts_verdict() derives them from the probe's per-address levels) with the facts of each host, and whether
// each address still accepts TLS 1.0 / 1.1 (reported, never lowering the level). Exit codes for scripts: 0 the domain
// is TLS-capable (every host meets encrypt or better), 4 it is not, 1 the probe could not run (DNS failure, null MX, no
// such domain), 2 bad input.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/cli.hpp"
#include "common/ascii.hpp"
#include "common/domain.hpp"
#include "dns/resolver.hpp"
#include "policy/mta_sts.hpp"
#include "policy/mta_sts_fetch.hpp"
#include "policy/mx_hosts.hpp"
#include "policy/plan.hpp"
#include "probe/probe.hpp"

namespace mailward::cli {
namespace {

// The same check as `policy` (common/domain.hpp); the message keeps the name as given, lower case.
std::string checked_domain(const std::string& raw) {
    auto d = common::DomainName::parse(raw);
    if (!d) throw Failure("'" + common::ascii::lower(raw) + "' is not a domain name", 2);
    return d->str();
}

// true: still accepted; false: refused; null: not probed (no STARTTLS) or unknown (legacy_detail).
nlohmann::json legacy_json(const probe::LegacyCheck& c) {
    if (c.result == probe::Legacy::accepted) return true;
    if (c.result == probe::Legacy::refused) return false;
    return nullptr;
}

// Why a legacy probe could not tell ("" when both answered or neither ran).
std::string legacy_detail(const probe::HostReport& h) {
    std::string out;
    for (const auto* c : {&h.tls10, &h.tls11}) {
        if (c->result != probe::Legacy::unknown) continue;
        if (!out.empty()) out += "; ";
        out += std::string(c == &h.tls10 ? "TLSv1" : "TLSv1.1") + " unknown: " + c->detail;
    }
    return out;
}

// The verdict, from the planner: the weakest level over every probed address, and the capability.
struct CheckVerdict {
    tls::Level level = tls::Level::none;
    bool tls_capable = false;
};
CheckVerdict verdict_of(const probe::DomainReport& r) {
    std::vector<policy::MxFact> per_address;
    for (const auto& h : r.hosts) per_address.push_back({h.host, h.level});
    const auto v = policy::hosts_verdict(per_address);
    return {v.level, r.error.empty() && v.capability == policy::DomainCapability::tls_capable};
}

nlohmann::json to_json(const probe::DomainReport& r) {
    const auto verdict = verdict_of(r);
    auto hosts = nlohmann::json::array();
    for (const auto& h : r.hosts) {
        const bool probed = h.tls10.result != probe::Legacy::not_probed;
        nlohmann::json chain = nlohmann::json::array();
        for (const auto& c : h.tls.chain) {
            chain.push_back({{"subject", c.subject},
                             {"issuer", c.issuer},
                             {"not_after", c.not_after},
                             {"key_type", c.key_type},
                             {"key_bits", c.key_bits}});
        }
        hosts.push_back(
            {{"host", h.host},
             {"preference", h.preference},
             {"address", h.address},
             {"connected", h.connected},
             {"error", h.error},
             {"starttls", h.starttls_offered},
             {"ehlo_tampered", h.ehlo_tampered},
             {"tls", h.tls.established ? nlohmann::json{{"protocol", h.tls.protocol},
                                                        {"cipher", h.tls.cipher},
                                                        {"forward_secret", h.tls.forward_secret},
                                                        {"aead", h.tls.aead},
                                                        {"chain_valid", h.tls.chain_valid},
                                                        {"name_matched", h.tls.name_matched},
                                                        {"verify_error", h.tls.verify_error},
                                                        {"spki_sha256", h.tls.spki_sha256},
                                                        {"chain", chain}}
                                       : nlohmann::json(nullptr)},
             {"tlsa", {{"secure", h.tlsa_secure}, {"records", h.tlsa_records}, {"matched", h.tls.dane_matched}}},
             {"tls10", legacy_json(h.tls10)},
             {"tls11", legacy_json(h.tls11)},
             {"legacy_protocols", probed ? nlohmann::json(probe::legacy_protocols(h)) : nlohmann::json(nullptr)},
             {"legacy_detail", legacy_detail(h)},
             {"level", tls::to_string(h.level)},
             {"why_not_higher", h.why_not_higher}});
    }
    return {{"domain", r.domain},
            {"error", r.error},
            {"mx_secure", r.mx_secure},
            {"implicit_mx", r.implicit_mx},
            {"verdict", tls::to_string(verdict.level)},
            {"tls_capable", verdict.tls_capable},
            {"weakest", r.weakest},
            {"hosts", hosts}};
}

void print_table(const probe::DomainReport& r) {
    const auto verdict = verdict_of(r);
    std::cout << r.domain << ": verdict " << tls::to_string(verdict.level) << " ("
              << (verdict.tls_capable ? "TLS-capable" : "NOT TLS-capable") << ", " << r.hosts.size() << " MX address"
              << (r.hosts.size() == 1 ? "" : "es") << (r.mx_secure ? ", MX DNSSEC-secure" : "")
              << (r.implicit_mx ? ", implicit MX" : "") << "); weakest: " << r.weakest << "\n";
    std::printf("%-4s %-30s %-16s %-8s %-8s %-24s %-22s %-8s %s\n", "PREF", "HOST", "ADDRESS", "STARTTLS", "TLS",
                "CIPHER", "CERTIFICATE", "LEVEL", "NOTE");
    for (const auto& h : r.hosts) {
        std::string cert = !h.tls.established   ? "-"
                           : h.tls.dane_checked ? (h.tls.dane_matched ? "TLSA match" : "TLSA mismatch")
                           : h.tls.chain_valid  ? (h.tls.name_matched ? "valid" : "valid, wrong name")
                                                : "untrusted: " + h.tls.verify_error;
        std::string note = h.ehlo_tampered ? "EHLO looks tampered (STARTTLS stripped?); " : "";
        // Legacy TLS is a weakness of its own, beside the level (which it never lowers).
        if (const auto legacy = probe::legacy_protocols(h); !legacy.empty()) {
            note += "legacy TLS: still accepts";
            for (const auto& p : legacy) note += " " + p;
            note += "; ";
        }
        if (const auto unknown = legacy_detail(h); !unknown.empty()) note += "legacy TLS " + unknown + "; ";
        note += h.why_not_higher;
        std::printf("%-4u %-30s %-16s %-8s %-8s %-24s %-22s %-8s %s\n", h.preference, h.host.c_str(),
                    h.address.empty() ? "-" : h.address.c_str(),
                    h.connected ? (h.starttls_offered ? "yes" : "no") : "-",
                    h.tls.established ? h.tls.protocol.c_str() : "-", h.tls.established ? h.tls.cipher.c_str() : "-",
                    cert.substr(0, 22).c_str(), std::string(tls::to_string(h.level)).c_str(), note.c_str());
    }
}

// The domain's MTA-STS record and policy (RFC 8461), as the delivery engine would see them.
nlohmann::json sts_json(const policy::MtaStsLookup& l, const probe::DomainReport& r) {
    nlohmann::json j = {{"status", l.status}};
    if (!l.policy) return j;
    j["mode"] = policy::to_string(l.policy->mode);
    j["id"] = l.id;
    j["mx"] = l.policy->mx;
    j["max_age"] = l.policy->max_age.count();
    nlohmann::json hosts = nlohmann::json::object();
    for (const auto& h : r.hosts) hosts[h.host] = policy::mx_allowed(*l.policy, h.host);
    j["mx_hosts_matching"] = hosts;
    return j;
}

void run_check(const Options& opts, const std::string& raw_domain) {
    const std::string domain = checked_domain(raw_domain);
    auto cfg = load_config(opts);
    std::string error;
    auto ctx = tls::make_client_context(cfg.delivery.ca_file, error);
    if (!ctx) throw Failure(error);
    boost::asio::io_context io;
    auto resolver = dns::make_unbound_resolver(io, cfg.dns, error);
    if (!resolver) throw Failure("DNS: " + error);
    probe::ProbeOptions po;
    po.port = cfg.delivery.port;
    po.helo_name = cfg.server.hostname;
    po.dane = cfg.policy.dane;
    po.legacy = true;  // also TLS 1.0 / 1.1 still accepted (two more connections per address)
    po.timeouts.connect = std::min<std::chrono::milliseconds>(cfg.delivery.connect_timeout, std::chrono::seconds(15));
    po.timeouts.greeting = po.timeouts.command = std::chrono::seconds(30);
    // The resolver keeps the io_context busy (it waits on libunbound's descriptor): stop when done.
    std::optional<probe::DomainReport> result;
    boost::asio::co_spawn(io, probe::probe_domain(**resolver, *ctx, domain, po),
                          [&result, &io](std::exception_ptr e, probe::DomainReport r) {
                              if (!e) result = std::move(r);
                              io.stop();
                          });
    io.run();
    if (!result) throw Failure(domain + ": the probe failed unexpectedly");
    auto& rep = *result;
    // MTA-STS: the record and the policy, fetched as delivery would (not cached across runs).
    std::optional<policy::MtaStsLookup> sts;
    if (cfg.policy.mta_sts && rep.error.empty()) {
        boost::asio::thread_pool pool(1);
        policy::MtaStsFetchOptions fo;
        fo.ca_file = cfg.delivery.ca_file;
        fo.port = cfg.policy.mta_sts_port;
        policy::CurlMtaStsFetcher fetcher(**resolver, pool, fo);
        policy::MtaStsCache cache(**resolver, fetcher);
        io.restart();
        boost::asio::co_spawn(io, cache.get(domain, std::chrono::system_clock::now()),
                              [&sts, &io](std::exception_ptr e, policy::MtaStsLookup l) {
                                  if (!e) sts = std::move(l);
                                  io.stop();
                              });
        io.run();
        pool.join();
    }
    if (opts.json) {
        auto j = to_json(rep);
        if (sts) j["mta_sts"] = sts_json(*sts, rep);
        std::cout << j.dump(2) << "\n";
    } else if (rep.error.empty()) {
        print_table(rep);
        if (sts) {
            std::cout << sts->status << "\n";
            if (sts->policy && sts->policy->mode != policy::MtaStsPolicy::Mode::none) {
                std::set<std::string> shown;
                for (const auto& h : rep.hosts) {
                    if (!shown.insert(h.host).second) continue;
                    std::cout << "  " << h.host
                              << (policy::mx_allowed(*sts->policy, h.host) ? ": matches the policy's mx patterns\n"
                                                                           : ": matches NO mx pattern of the policy\n");
                }
            }
        }
    }
    if (!rep.error.empty()) throw Failure(domain + ": " + rep.error, 1);
    if (!verdict_of(rep).tls_capable) throw Exit{4};
}

}  // namespace

void add_check(CLI::App& app, Options& opts) {
    auto* cmd = app.add_subcommand("check", "probe every MX host of a domain for TLS");
    add_common(cmd, opts, true);
    static std::string domain;
    cmd->add_option("DOMAIN", domain, "recipient domain")->required();
    cmd->callback([&opts] { run_check(opts, domain); });
}

}  // namespace mailward::cli
