// `mailward policy simulate [--mode MODE] [--since 7d] [--user NAME] [--tls-required-no]`: a dry
// run of a sender mode over the destinations of the delivery log (data_dir/delivery.log, JSON
// lines written by mailward; lines it cannot read are counted and skipped). Each domain's verdict
// comes from policy::plan(), the one place that decides, fed by policy::simulation_facts() from
// what is recorded (learned level and evidence, override, static policy, the preload file, the
// MTA-STS cache file, what the MX hosts showed in the log); this file reads those and prints.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/policy_internal.hpp"
#include "common/duration.hpp"
#include "common/timefmt.hpp"
#include "delivery/delivery_log.hpp"
#include "policy/facts.hpp"
#include "policy/mta_sts_store.hpp"
#include "policy/plan.hpp"
#include "policy/preload.hpp"

namespace mailward::cli::policy_cli {
namespace {

// What the delivery log shows of one domain in the window.
struct Seen {
    std::size_t attempts = 0;
    TimePoint last{};
    std::string last_result;
    json last_tls;                                  // the newest session's TLS facts (null: no TLS)
    bool had_session = false;                       // some line names an MX host
    std::map<std::string, tls::Level> host_levels;  // newest telling line per MX host
};

struct LogScan {
    std::map<std::string, Seen> domains;
    std::size_t skipped = 0;  // lines that are not JSON or lack a time or recipient
};

// The delivery log's reader (delivery_log.hpp) does the parsing; this keeps what simulate needs.
LogScan scan_log(const std::filesystem::path& path, TimePoint from) {
    LogScan out;
    const auto r = delivery::read_log(path, from, [&](const delivery::LogEntry& e) {
        auto& s = out.domains[e.domain];
        ++s.attempts;
        s.last = std::max(s.last, e.time);
        s.last_result = e.result;
        if (!e.mx.empty()) {
            s.had_session = true;
            s.last_tls = e.tls;
            if (e.level_seen) s.host_levels[e.mx] = *e.level_seen;
        }
    });
    if (!r) throw Failure("cannot read the delivery log " + path.string());
    out.skipped = r->skipped;
    return out;
}

struct Verdict {
    std::string outcome;  // ok | plaintext | escrow | bounce | unknown
    bool would_fail = false;
    std::string text;  // for the table
    policy::DomainCapability capability = policy::DomainCapability::unknown;
    policy::Decision decision;
};

// A simulated message: does it carry "TLS-Required: No", and may its sender use it.
struct SimMessage {
    bool tls_required_no = false;
    policy::TlsOptionalRight right;
};

Verdict judge(config::SenderMode mode, const SimMessage& msg, const policy::DestinationFacts& facts, TimePoint now) {
    using policy::DomainCapability;
    Verdict v;
    policy::MessageFacts m;
    m.mode = mode;
    m.tls_required_no = msg.tls_required_no;
    m.tls_optional = msg.right;
    m.received_at = now;
    const auto plan = policy::plan(facts, m, now);
    v.capability = plan.capability;
    v.decision = plan.decision;
    const auto& d = v.decision;
    const bool escrow_mode = mode == config::SenderMode::escrow_always;
    auto fail = [&](const policy::Decision& x, const std::string& prefix) {
        v.outcome = std::string(policy::to_string(x.action));
        v.would_fail = !escrow_mode;
        v.text = escrow_mode ? "escrow" : prefix + v.outcome + (x.status.empty() ? "" : " (" + x.status + ")");
    };
    switch (d.action) {
        case policy::Action::escrow:
        case policy::Action::bounce: fail(d, "would fail: "); break;
        case policy::Action::defer:
            v.outcome = "unknown";
            v.text = d.probe_needed ? "unknown: would probe first" : "unknown: deferred";
            break;
        case policy::Action::deliver:
            if (d.plaintext_allowed) {
                v.outcome = "plaintext";
                v.text = "ok, plaintext allowed";
            } else if (v.capability == DomainCapability::no_tls) {
                // TLS is required but the hosts did not do it: the attempt fails, then the mode's
                // answer (the planner's) once retries run out.
                m.first_failure = now;
                const auto later = now + std::max(facts.escrow_after, facts.max_queue_lifetime);
                const auto after = policy::plan_after_tls_failure(facts, m, later);
                fail(after, "would fail: deferred, then ");
                v.decision.reasons.push_back("after the TLS failure: " + after.summary);
                v.decision.summary += "; after the TLS failure: " + after.summary;
            } else if (v.capability == DomainCapability::unknown) {
                v.outcome = "unknown";
                v.text = "unknown: TLS required at " + std::string(tls::to_string(d.level)) + ", TLS not yet seen";
            } else {
                v.outcome = "ok";
                v.text = "ok (TLS at " + std::string(tls::to_string(d.level)) + ")";
            }
            break;
    }
    return v;
}

}  // namespace

void simulate(const Options& opts, const std::string& mode_name, const std::string& since_text, bool tls_required_no,
              const std::string& user) {
    const auto cfg = load_config(opts);
    config::SenderMode mode = cfg.policy.default_mode;
    auto st = open_store(cfg);
    // The simulated message's sender: an account (its mode and its right to TLS-Required: No) or
    // an unauthenticated trusted-network client.
    SimMessage msg;
    msg.tls_required_no = tls_required_no;
    if (!user.empty()) {
        auto u = st->users().get(user);
        if (!u && u.error() == common::Errc::not_found) throw Failure("no user '" + user + "'", 2);
        if (!u) throw Failure("cannot read user '" + user + "': " + u.error().message());
        if (auto m = config::parse_sender_mode(u->mode)) mode = *m;
        msg.right = policy::tls_optional_right(user, u->allow_tls_optional, cfg.policy.tls_optional_trusted_networks);
    } else {
        msg.right = policy::tls_optional_right("", std::nullopt, cfg.policy.tls_optional_trusted_networks);
    }
    if (!mode_name.empty()) {
        auto m = config::parse_sender_mode(mode_name);
        if (!m)
            throw Failure(
                "unknown mode '" + mode_name + "' (expected tls-only, tls-or-escrow, escrow-always or opportunistic)",
                2);
        mode = *m;
    }
    const auto since = common::parse_duration(since_text);
    if (!since || since->count() <= 0)
        throw Failure("--since '" + since_text + "' is not a duration (e.g. 7d, 12h)", 2);
    const auto now = Clock::now();
    const auto from = now - std::chrono::duration_cast<Clock::duration>(*since);
    const auto scan = scan_log(cfg.server.data_dir / "delivery.log", from);
    auto& ps = st->policy();
    std::map<std::string, store::Override> overrides;
    for (auto& o : must(ps.overrides(), "the overrides")) overrides.emplace(o.domain, std::move(o));
    // The preload list and the MTA-STS policies cached by `mailward serve`, as delivery would use them.
    std::optional<policy::PreloadList> preload;
    if (!cfg.policy.preload_file.empty()) {
        std::string error;
        preload = policy::load_preload(config::in_data_dir(cfg, cfg.policy.preload_file), error);
        if (!preload) throw Failure("the preload list: " + error);
    }
    std::map<std::string, policy::CachedMtaStsPolicy> sts_cache;
    if (cfg.policy.mta_sts) {
        // What reading the stored policies logs (a damaged row, how many were loaded) goes to
        // stderr: stdout is the table or the JSON.
        auto previous = spdlog::default_logger();
        spdlog::set_default_logger(
            std::make_shared<spdlog::logger>("simulate", std::make_shared<spdlog::sinks::stderr_color_sink_st>()));
        sts_cache = policy::MtaStsStore(ps).load();
        spdlog::set_default_logger(previous);
    }

    std::map<std::string, std::size_t> counts{
        {"ok", 0}, {"plaintext", 0}, {"escrow", 0}, {"bounce", 0}, {"unknown", 0}};
    std::size_t failing = 0;
    auto rows = json::array();
    std::vector<std::string> tls_texts;  // the LAST TLS column
    for (const auto& [domain, seen] : scan.domains) {
        policy::SimulationRecord rec;
        rec.domain = domain;
        rec.learned = must(ps.get(domain), "the learned level of " + domain);
        if (auto it = overrides.find(domain); it != overrides.end()) rec.override = it->second;
        if (auto it = sts_cache.find(domain); it != sts_cache.end()) rec.mta_sts = policy::cached_fact(it->second, now);
        rec.preload = preload ? &*preload : nullptr;
        rec.observed = seen.host_levels;
        auto facts = policy::simulation_facts(cfg, rec, now);
        if (!facts) throw Failure("the learned level of " + domain + " is not on the ladder: " + rec.learned->level);
        const auto& learned = facts->learned;
        const auto& ovr = facts->override;
        const auto v = judge(mode, msg, *facts, now);
        ++counts[v.outcome];
        failing += v.would_fail ? 1 : 0;
        json tls_seen = nullptr;  // the newest session's TLS, null: no session, or one without TLS
        std::string tls_text = "-";
        if (seen.last_tls.is_object()) {
            tls_seen = {{"protocol", seen.last_tls.value("protocol", "")},
                        {"cipher", seen.last_tls.value("cipher", "")}};
            tls_text = tls_seen["protocol"].get<std::string>();
        } else if (seen.had_session) {
            tls_text = "none";
        }
        tls_texts.push_back(tls_text);
        // The [[delivery.routes]] entry the domain's mail takes now (the config's, as delivery would).
        const auto* route = config::find_route(cfg.delivery.routes, domain);
        rows.push_back(
            {{"domain", domain},
             {"route", route ? json(route->name) : json(nullptr)},
             {"learned", learned ? json(std::string(tls::to_string(learned->level))) : json(nullptr)},
             {"override", ovr && ovr->active(now) ? json(std::string(tls::to_string(ovr->level))) : json(nullptr)},
             {"attempts", seen.attempts},
             {"last_attempt", time_json(seen.last)},
             {"last_result", seen.last_result},
             {"last_tls", tls_seen},
             {"capability", std::string(policy::to_string(v.capability))},
             {"required_level", std::string(tls::to_string(v.decision.level))},
             {"action", std::string(policy::to_string(v.decision.action))},
             {"outcome", v.outcome},
             {"would_fail", v.would_fail},
             {"verdict", v.text},
             {"tls_required_no_ignored", v.decision.tls_required_no_ignored},
             {"reasons", v.decision.reasons}});
    }
    const std::string mode_str(config::to_string(mode));
    std::string summary = std::to_string(scan.domains.size()) + " domain" + (scan.domains.size() == 1 ? "" : "s") +
                          " in the last " + since_text + " under " + mode_str + ": " + std::to_string(counts["ok"]) +
                          " ok, " + std::to_string(counts["plaintext"]) + " plaintext allowed, " +
                          std::to_string(failing) + " would fail (" + std::to_string(counts["bounce"]) + " bounce, " +
                          std::to_string(counts["escrow"]) + " escrow), " + std::to_string(counts["unknown"]) +
                          " unknown";
    if (scan.skipped) summary += "; " + std::to_string(scan.skipped) + " unreadable log lines skipped";
    if (tls_required_no)
        summary += std::string("; TLS-Required: No ") +
                   (msg.right.allowed ? "honoured (never below an admin override or static policy): " : "ignored: ") +
                   msg.right.why;
    if (opts.json) {
        json j = {{"mode", mode_str},
                  {"since", since_text},
                  {"from", time_json(from)},
                  {"domains", rows},
                  {"summary",
                   {{"domains", scan.domains.size()},
                    {"ok", counts["ok"]},
                    {"plaintext", counts["plaintext"]},
                    {"bounce", counts["bounce"]},
                    {"escrow", counts["escrow"]},
                    {"unknown", counts["unknown"]},
                    {"would_fail", failing},
                    {"skipped_lines", scan.skipped}}}};
        j["tls_required_no"] =
            tls_required_no ? json{{"allowed", msg.right.allowed}, {"why", msg.right.why}} : json(nullptr);
        std::cout << j.dump(2) << "\n";
        return;
    }
    if (!rows.empty()) {
        int w = 6;
        for (const auto& r : rows) w = std::max(w, static_cast<int>(r["domain"].get<std::string>().size()));
        std::printf("%-*s  %-8s  %-8s  %8s  %-16s  %s\n", w, "DOMAIN", "LEARNED", "OVERRIDE", "ATTEMPTS", "LAST TLS",
                    "VERDICT");
        for (std::size_t i = 0; i < rows.size(); ++i) {
            const auto& r = rows[i];
            std::printf("%-*s  %-8s  %-8s  %8zu  %-16s  %s\n", w, r["domain"].get<std::string>().c_str(),
                        r["learned"].is_null() ? "-" : r["learned"].get<std::string>().c_str(),
                        r["override"].is_null() ? "-" : r["override"].get<std::string>().c_str(),
                        r["attempts"].get<std::size_t>(), tls_texts[i].c_str(),
                        (r["verdict"].get<std::string>() +
                         (r["route"].is_null() ? "" : " [route " + r["route"].get<std::string>() + "]"))
                            .c_str());
        }
    }
    std::cout << "summary: " << summary << "\n";
}

}  // namespace mailward::cli::policy_cli
