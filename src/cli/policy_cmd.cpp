// `mailward policy list|show|set|clear|forget|simulate|export`: registers the subcommands (CLI11)
// and runs the small ones - list (learned levels and overrides per recipient domain), and the
// administrator's set/clear of an override (reason, expiry, audit) and forget of a learned level.
// show, simulate and export have a file each (policy_<name>.cpp); what they share is in
// policy_common.cpp. Command-line input is untrusted and checked before the store is touched.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>

#include "cli/cli.hpp"
#include "cli/policy_internal.hpp"
#include "common/timefmt.hpp"

namespace mailward::cli {
namespace policy_cli {

void list(const Options& opts) {
    auto st = open_store(load_config(opts));
    auto& ps = st->policy();
    const auto now = Clock::now();
    struct Row {
        std::optional<store::LearnedPolicy> learned;
        std::optional<store::Override> override;
    };
    std::map<std::string, Row> rows;  // by domain
    for (auto& p : must(ps.list(), "the learned levels")) rows[p.domain].learned = std::move(p);
    for (auto& o : must(ps.overrides(), "the overrides")) rows[o.domain].override = std::move(o);
    if (opts.json) {
        auto arr = json::array();
        for (const auto& [domain, r] : rows) {
            json j = r.learned ? learned_json(*r.learned)
                               : json{{"domain", domain},          {"level", nullptr},      {"first_seen", nullptr},
                                      {"last_confirmed", nullptr}, {"last_probe", nullptr}, {"evidence", nullptr}};
            j["override"] = r.override ? override_json(*r.override, now) : json(nullptr);
            arr.push_back(std::move(j));
        }
        std::cout << arr.dump(2) << "\n";
        return;
    }
    if (rows.empty()) {
        std::cout << "no learned policy and no overrides yet\n";
        return;
    }
    int w = 6;
    for (const auto& [domain, r] : rows) w = std::max(w, static_cast<int>(domain.size()));
    std::printf("%-*s  %-8s  %-20s  %-20s  %s\n", w, "DOMAIN", "LEARNED", "FIRST SEEN", "LAST CONFIRMED", "OVERRIDE");
    for (const auto& [domain, r] : rows) {
        std::printf("%-*s  %-8s  %-20s  %-20s  %s\n", w, domain.c_str(), r.learned ? r.learned->level.c_str() : "-",
                    r.learned ? common::iso8601(r.learned->first_seen).c_str() : "-",
                    r.learned ? common::iso8601(r.learned->last_confirmed).c_str() : "-",
                    r.override ? override_text(*r.override, now).c_str() : "-");
    }
}

void set(const Options& opts, const SetArgs& a) {
    const auto now = Clock::now();
    const std::string d = checked_domain(a.domain);
    const std::string level = checked_level(a.level);
    const std::string reason = checked_reason(a.reason);
    std::optional<TimePoint> expires;
    if (!a.expires.empty()) expires = checked_expiry(a.expires, now);
    auto st = open_store(load_config(opts));
    auto& ps = st->policy();
    const std::string who = who_am_i();
    if (auto r = ps.set_override(d, level, reason, expires, now, who); !r)
        throw Failure("cannot set the override for " + d + ": " + r.error().message());
    const auto learned = must(ps.get(d), "the learned level");
    store::Override o{d, level, reason, expires, now, who};
    if (opts.json) {
        json j = override_json(o, now);
        j["domain"] = d;
        j["learned"] = learned ? json(learned->level) : json(nullptr);
        std::cout << j.dump(2) << "\n";
        return;
    }
    std::cout << d << ": override " << override_text(o, now) << " set by " << who << ": " << reason << "\n";
    if (learned && *store::level_rank(level) < *store::level_rank(learned->level))
        std::cout << "note: this lowers the learned level " << learned->level << " for every sender\n";
}

void clear(const Options& opts, const std::string& raw) {
    const std::string d = checked_domain(raw);
    auto st = open_store(load_config(opts));
    const std::string who = who_am_i();
    auto r = st->policy().clear_override(d, who, Clock::now());
    if (!r && r.error() == common::Errc::not_found) throw Failure("there is no override for " + d);
    if (!r) throw Failure("cannot clear the override for " + d + ": " + r.error().message());
    if (opts.json) {
        std::cout << json{{"domain", d}, {"action", "clear_override"}, {"who", who}}.dump() << "\n";
    } else {
        std::cout << d << ": override cleared by " << who << "\n";
    }
}

void forget(const Options& opts, const std::string& raw) {
    const std::string d = checked_domain(raw);
    auto st = open_store(load_config(opts));
    const std::string who = who_am_i();
    auto r = st->policy().forget(d, who, Clock::now());
    if (!r && r.error() == common::Errc::not_found) throw Failure("nothing is learned about " + d);
    if (!r) throw Failure("cannot forget " + d + ": " + r.error().message());
    if (opts.json) {
        std::cout << json{{"domain", d}, {"action", "forget"}, {"who", who}}.dump() << "\n";
    } else {
        std::cout << d << ": learned policy forgotten by " << who << " (probes, incidents and audit stay)\n";
    }
}

}  // namespace policy_cli

using namespace policy_cli;  // the subcommands registered below

void add_policy(CLI::App& app, Options& opts) {
    auto* p = app.add_subcommand("policy", "learned TLS policy and admin overrides per recipient domain");
    p->require_subcommand(1);
    static std::string domain;

    auto* l = p->add_subcommand("list", "domains with a learned level or an override");
    add_common(l, opts, true);
    l->callback([&opts] { list(opts); });

    auto* s = p->add_subcommand("show", "a domain's learned level, evidence, override, probes, incidents, audit");
    add_common(s, opts, true);
    s->add_option("DOMAIN", domain, "recipient domain")->required();
    s->callback([&opts] { show(opts, domain); });

    static SetArgs set_args;
    auto* st = p->add_subcommand("set", "admin override: the level a domain requires, with a reason");
    add_common(st, opts, true);
    st->add_option("DOMAIN", set_args.domain, "recipient domain")->required();
    st->add_option("LEVEL", set_args.level, "none, may, encrypt, verify or dane")->required();
    st->add_option("--reason", set_args.reason, "why (kept in the audit trail)")->required();
    st->add_option("--expires", set_args.expires, "ISO 8601 date or date-time (UTC unless an offset), or 7d, 12h");
    st->callback([&opts] { set(opts, set_args); });

    auto* c = p->add_subcommand("clear", "remove a domain's override");
    add_common(c, opts, true);
    c->add_option("DOMAIN", domain, "recipient domain")->required();
    c->callback([&opts] { clear(opts, domain); });

    auto* f = p->add_subcommand("forget", "drop what was learned about a domain (history stays)");
    add_common(f, opts, true);
    f->add_option("DOMAIN", domain, "recipient domain")->required();
    f->callback([&opts] { forget(opts, domain); });

    static std::string mode, since = "7d", sim_user;
    static bool sim_header = false;
    auto* sim = p->add_subcommand("simulate", "what a sender mode would do to recent destinations");
    add_common(sim, opts, true);
    sim->add_option("--mode", mode,
                    "tls-only, tls-or-escrow, escrow-always or opportunistic (default: [policy] default_mode)");
    sim->add_option("--since", since, "delivery log window, a duration (default 7d)");
    sim->add_option("--user", sim_user,
                    "the sender is this account (its mode and its right to TLS-Required: No); "
                    "default: an unauthenticated trusted-network client");
    sim->add_flag("--tls-required-no", sim_header,
                  "the message carries the header TLS-Required: No (RFC 8689 section 5)");
    sim->callback([&opts] { simulate(opts, mode, since, sim_header, sim_user); });

    static std::string format, out;
    auto* ex = p->add_subcommand("export", "the policy as a Postfix smtp_tls_policy_maps table");
    add_common(ex, opts, true);
    ex->add_option("--format", format, "postfix")->required();
    ex->add_option("-o,--output", out, "file to write (default: standard output)");
    ex->callback([&opts] { export_policy(opts, format, out); });
}

}  // namespace mailward::cli
