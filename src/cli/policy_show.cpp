// `mailward policy show DOMAIN [--json]`: everything known about one recipient domain - the
// learned level with its per-MX evidence, the administrator's override, the newest probes, the
// downgrade incidents and the audit trail. Reads the policy store only; the domain is checked.
#include <iostream>

#include "cli/policy_internal.hpp"
#include "common/timefmt.hpp"

namespace mailward::cli::policy_cli {
namespace {

constexpr std::size_t kShownProbes = 10;

json mx_json(const store::MxEvidence& e) {
    return {{"host", e.host},
            {"address", e.address},
            {"level", e.level},
            {"starttls", e.starttls},
            {"protocol", e.protocol},
            {"cipher", e.cipher},
            {"chain_valid", e.chain_valid},
            {"name_matched", e.name_matched},
            {"spki_sha256", e.spki_sha256},
            {"dane_matched", e.dane_matched},
            {"seen_at", time_json(e.seen_at)}};
}

std::string mx_text(const store::MxEvidence& e) {
    std::string s = e.host + " [" + e.address + "]  " + e.level + "  ";
    if (!e.starttls) return s + "no STARTTLS, seen " + common::iso8601(e.seen_at);
    s += e.protocol.empty() ? std::string("STARTTLS, no TLS session") : e.protocol + " " + e.cipher;
    s += e.chain_valid ? ", chain valid" : ", chain not valid";
    s += e.name_matched ? ", names the host" : ", does not name the host";
    if (e.dane_matched) s += ", DANE matched";
    if (!e.spki_sha256.empty()) s += ", spki " + e.spki_sha256.substr(0, 16) + "...";
    return s + ", seen " + common::iso8601(e.seen_at);
}

}  // namespace

void show(const Options& opts, const std::string& raw) {
    const std::string d = checked_domain(raw);
    auto st = open_store(load_config(opts));
    auto& ps = st->policy();
    const auto now = Clock::now();
    const auto learned = must(ps.get(d), "the learned level");
    const auto ovr = override_of(ps, d);
    const auto probes = must(ps.probes(d, kShownProbes), "the probes");
    const auto incidents = must(ps.incidents(d), "the incidents");
    const auto audit = must(ps.audit(d), "the audit trail");
    if (!learned && !ovr && probes.empty() && incidents.empty() && audit.empty())
        throw Failure("nothing is known about " + d);

    if (opts.json) {
        json j = learned ? learned_json(*learned) : json{{"domain", d},           {"level", nullptr},
                                                         {"first_seen", nullptr}, {"last_confirmed", nullptr},
                                                         {"last_probe", nullptr}, {"evidence", nullptr}};
        auto mx = json::array();
        if (learned)
            for (const auto& e : learned->mx) mx.push_back(mx_json(e));
        j["mx"] = std::move(mx);
        j["override"] = ovr ? override_json(*ovr, now) : json(nullptr);
        auto pj = json::array(), ij = json::array(), aj = json::array();
        for (const auto& p : probes)
            pj.push_back({{"at", time_json(p.at)}, {"level", p.level}, {"report", report_json(p.report)}});
        for (const auto& i : incidents) {
            ij.push_back({{"at", time_json(i.at)},
                          {"kind", i.kind},
                          {"detail", i.detail},
                          {"host", i.host},
                          {"address", i.address},
                          {"raw_evidence", i.raw_evidence}});
        }
        for (const auto& a : audit) {
            aj.push_back({{"at", time_json(a.at)},
                          {"who", a.who},
                          {"action", a.action},
                          {"level", a.level},
                          {"detail", a.detail}});
        }
        j["probes"] = std::move(pj);
        j["incidents"] = std::move(ij);
        j["audit"] = std::move(aj);
        std::cout << j.dump(2) << "\n";
        return;
    }
    std::cout << "domain:          " << d << "\n";
    if (learned) {
        std::cout << "learned level:   " << learned->level << "\n"
                  << "first seen:      " << common::iso8601(learned->first_seen) << "\n"
                  << "last confirmed:  " << common::iso8601(learned->last_confirmed) << "\n"
                  << "last probe:      " << (learned->last_probe ? common::iso8601(*learned->last_probe) : "-") << "\n"
                  << "evidence:        " << learned->evidence << "\n";
        if (!learned->mx.empty()) std::cout << "MX evidence:\n";
        for (const auto& e : learned->mx) std::cout << "  " << mx_text(e) << "\n";
    } else {
        std::cout << "learned level:   none learned\n";
    }
    if (ovr) {
        std::cout << "override:        " << override_text(*ovr, now) << ", set by " << ovr->set_by << " at "
                  << common::iso8601(ovr->set_at) << ": " << ovr->reason << "\n";
    } else {
        std::cout << "override:        -\n";
    }
    if (!probes.empty()) std::cout << "probes (newest first):\n";
    for (const auto& p : probes) std::cout << "  " << common::iso8601(p.at) << "  " << p.level << "\n";
    if (!incidents.empty()) std::cout << "incidents:\n";
    for (const auto& i : incidents) {
        std::cout << "  incident " << common::iso8601(i.at) << "  " << i.kind;
        if (!i.host.empty()) std::cout << "  " << i.host << (i.address.empty() ? "" : " [" + i.address + "]");
        std::cout << ": " << i.detail << "\n";
    }
    if (!audit.empty()) std::cout << "audit:\n";
    for (const auto& a : audit) {
        std::cout << "  " << common::iso8601(a.at) << "  " << a.who << "  " << a.action
                  << (a.level.empty() ? "" : " " + a.level) << (a.detail.empty() ? "" : ": " + a.detail) << "\n";
    }
}

}  // namespace mailward::cli::policy_cli
