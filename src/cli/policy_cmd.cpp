// `mailward policy list|show DOMAIN|forget DOMAIN [--json]`: the learned TLS policy per domain (the
// ratchet) and its incidents. `policy set` (admin override with reason and expiry) is not there yet.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli.hpp"
#include "common/timefmt.hpp"
#include "store/store.hpp"

namespace mailward::cli {
namespace {

std::unique_ptr<store::Store> open_store(const Options& opts) {
    auto cfg = load_config(opts);
    auto s = store::open(cfg);
    if (!s) throw Failure("cannot open the store in " + cfg.server.data_dir.string() + ": " + s.error().message());
    return std::move(*s);
}

std::string lower(std::string d) {
    for (auto& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return d;
}

nlohmann::json to_json(const store::LearnedPolicy& p) {
    return {{"domain", p.domain}, {"level", p.level}, {"first_seen", common::iso8601(p.first_seen)},
            {"last_confirmed", common::iso8601(p.last_confirmed)}, {"evidence", nlohmann::json::parse(p.evidence, nullptr, false)}};
}

}  // namespace

void add_policy(CLI::App& app, Options& opts) {
    auto* p = app.add_subcommand("policy", "learned TLS policy per recipient domain");
    p->require_subcommand(1);
    static std::string domain;

    auto* list = p->add_subcommand("list", "domains with a learned level");
    add_common(list, opts, true);
    list->callback([&opts] {
        auto st = open_store(opts);
        auto all = st->policy().list();
        if (!all) throw Failure("cannot read the policy store: " + all.error().message());
        if (opts.json) {
            auto arr = nlohmann::json::array();
            for (const auto& x : *all) arr.push_back(to_json(x));
            std::cout << arr.dump(2) << "\n";
            return;
        }
        if (all->empty()) std::cout << "no learned policy yet\n";
        for (const auto& x : *all) {
            std::cout << x.domain << "  " << x.level << "  since " << common::iso8601(x.first_seen)
                      << ", confirmed " << common::iso8601(x.last_confirmed) << "\n";
        }
    });

    auto* show = p->add_subcommand("show", "a domain's learned level, evidence and incidents");
    add_common(show, opts, true);
    show->add_option("DOMAIN", domain, "recipient domain")->required();
    show->callback([&opts] {
        auto st = open_store(opts);
        const std::string d = lower(domain);
        auto got = st->policy().get(d);
        if (!got) throw Failure("cannot read the policy store: " + got.error().message());
        auto inc = st->policy().incidents(d);
        if (!inc) throw Failure("cannot read incidents: " + inc.error().message());
        if (!got->has_value() && inc->empty()) throw Failure("nothing is known about " + d, 1);
        auto incidents = nlohmann::json::array();
        for (const auto& i : *inc) {
            incidents.push_back({{"at", common::iso8601(i.at)}, {"kind", i.kind}, {"detail", i.detail}});
        }
        if (opts.json) {
            nlohmann::json j = got->has_value() ? to_json(**got) : nlohmann::json{{"domain", d}, {"level", nullptr}};
            j["incidents"] = incidents;
            std::cout << j.dump(2) << "\n";
            return;
        }
        if (got->has_value()) {
            std::cout << d << ": learned " << (*got)->level << " (first seen " << common::iso8601((*got)->first_seen)
                      << ", last confirmed " << common::iso8601((*got)->last_confirmed) << ")\n"
                      << "evidence: " << (*got)->evidence << "\n";
        } else {
            std::cout << d << ": no learned level\n";
        }
        for (const auto& i : *inc) {
            std::cout << "incident " << common::iso8601(i.at) << " " << i.kind << ": " << i.detail << "\n";
        }
    });

    auto* forget = p->add_subcommand("forget", "drop what was learned about a domain (admin only)");
    add_common(forget, opts, true);
    forget->add_option("DOMAIN", domain, "recipient domain")->required();
    forget->callback([&opts] {
        auto st = open_store(opts);
        const std::string d = lower(domain);
        auto r = st->policy().forget(d);
        if (!r && r.error() == common::Errc::not_found) throw Failure("nothing is learned about " + d);
        if (!r) throw Failure("cannot forget " + d + ": " + r.error().message());
        std::cout << d << ": learned policy forgotten\n";
    });

    auto* set = p->add_subcommand("set", "admin override (not available in this version)");
    add_common(set, opts, true);
    set->allow_extras();
    set->callback([] { throw Failure("'policy set' is not available in this version of mailward yet", 3); });
}

}  // namespace mailward::cli
