// `mailward escrow list [--all] | show ID | revoke ID [--reason TEXT] | audit ID [--json]`: the
// escrowed messages (never their content), revocation (crypto-shredding: the wrapped key is
// destroyed at once) and the audit log of one message with its hash chain verified, and checked
// against the anchor file (escrow/anchor.hpp). revoke and audit need the master key (the chain is
// keyed with it), as `serve` does; revoke anchors the row it appends.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "cli/cli.hpp"
#include "common/timefmt.hpp"
#include "escrow/anchor.hpp"
#include "escrow/keys.hpp"
#include "escrow/service.hpp"
#include "store/store.hpp"

namespace mailward::cli {
namespace {

std::unique_ptr<store::Store> open_store(const config::Config& cfg) {
    auto s = store::open(cfg);
    if (!s) throw Failure("cannot open the store in " + cfg.server.data_dir.string() + ": " + s.error().message());
    return std::move(*s);
}

std::unique_ptr<escrow::MasterKeyHolder> load_key(const config::Config& cfg) {
    auto path = config::in_data_dir(
        cfg, cfg.escrow.master_key_file.empty() ? std::filesystem::path("master.key") : cfg.escrow.master_key_file);
    auto key = escrow::MasterKeyHolder::load(path);
    if (!key) throw Failure(key.error().message);
    return std::move(*key);
}

std::filesystem::path anchor_path(const config::Config& cfg) {
    return config::in_data_dir(cfg, escrow::kAuditAnchorFile);
}

// Escrow ids are 16 lower-case hex digits (from `escrow list`).
std::string checked_id(const std::string& id) {
    bool ok = id.size() == 16;
    for (char c : id) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    if (!ok) throw Failure("'" + id + "' is not an escrow id (16 hex digits, e.g. from 'escrow list')", 2);
    return id;
}

store::EscrowRecord get_or_fail(store::Store& st, const std::string& id) {
    auto rec = st.escrow().get(id);
    if (!rec) {
        if (rec.error() == common::Errc::not_found) throw Failure("no escrowed message " + id);
        throw Failure("escrow " + id + ": " + rec.error().message());
    }
    return std::move(*rec);
}

nlohmann::json to_json(const store::EscrowRecord& r) {
    return {{"id", r.id},
            {"state", store::to_string(r.state)},
            {"recipient", r.recipient},
            {"sender", r.sender},
            {"sender_name", r.sender_name},
            {"queue_id", r.queue_id},
            {"created", common::iso8601(r.created)},
            {"expires", common::iso8601(r.expires)},
            {"ended_at", r.ended_at ? common::iso8601(*r.ended_at) : ""},
            {"key_destroyed", r.wrapped_key.empty()},
            {"locked", r.locked_until.has_value()}};
}

void list(const Options& opts, bool all) {
    auto cfg = load_config(opts);
    auto st = open_store(cfg);
    auto rows = st->escrow().list(all);
    if (!rows) throw Failure("cannot list escrow: " + rows.error().message());
    if (opts.json) {
        auto arr = nlohmann::json::array();
        for (const auto& r : *rows) arr.push_back(to_json(r));
        std::cout << arr.dump(2) << "\n";
        return;
    }
    if (rows->empty()) {
        std::cout << (all ? "no escrowed messages\n" : "no active escrowed messages (--all shows ended ones)\n");
        return;
    }
    std::printf("%-16s  %-8s  %-20s  %-20s  %s\n", "ID", "STATE", "CREATED", "EXPIRES", "RECIPIENT");
    for (const auto& r : *rows)
        std::printf("%-16s  %-8s  %-20s  %-20s  %s\n", r.id.c_str(), std::string(store::to_string(r.state)).c_str(),
                    common::iso8601(r.created).c_str(), common::iso8601(r.expires).c_str(), r.recipient.c_str());
}

void show(const Options& opts, const std::string& raw_id) {
    auto id = checked_id(raw_id);
    auto cfg = load_config(opts);
    auto st = open_store(cfg);
    auto r = get_or_fail(*st, id);
    if (opts.json) {
        std::cout << to_json(r).dump(2) << "\n";
        return;
    }
    auto j = to_json(r);
    for (const char* k : {"id", "state", "recipient", "sender", "sender_name", "queue_id", "created", "expires",
                          "ended_at", "key_destroyed", "locked"})
        std::cout << k << ": " << (j[k].is_string() ? j[k].get<std::string>() : j[k].dump()) << "\n";
}

void revoke(const Options& opts, const std::string& raw_id, const std::string& reason) {
    auto id = checked_id(raw_id);
    auto cfg = load_config(opts);
    auto st = open_store(cfg);
    auto key = load_key(cfg);
    (void)get_or_fail(*st, id);
    if (auto a = escrow::attach_audit_anchor(st->escrow(), anchor_path(cfg)); !a)
        throw Failure("cannot open the audit anchor " + anchor_path(cfg).string() + ": " + a.error().message());
    escrow::ServiceSettings settings;
    settings.code_rules = escrow_code_rules(cfg);
    escrow::EscrowService svc(*st, *key, settings);
    const char* user = std::getenv("USER");
    std::string who = std::string("admin ") + (user ? user : "?") + (reason.empty() ? "" : " (" + reason + ")");
    auto r = svc.revoke(id, who, escrow::Clock::now());
    if (!r) {
        if (r.error() == common::Errc::already_exists) throw Failure("escrow " + id + " is not active (already ended)");
        throw Failure("cannot revoke " + id + ": " + r.error().message());
    }
    std::cout << "revoked " << id << ": its key is destroyed; the message can no longer be opened\n";
}

void audit(const Options& opts, const std::string& raw_id) {
    auto id = checked_id(raw_id);
    auto cfg = load_config(opts);
    auto st = open_store(cfg);
    auto key = load_key(cfg);
    (void)get_or_fail(*st, id);
    auto rows = st->escrow().audit(id);
    if (!rows) throw Failure("cannot read the audit of " + id + ": " + rows.error().message());
    auto verdict = escrow::verify_audit(*rows, *key);
    // The chain proves the rows fit together; the anchor, kept outside the database, that none
    // were cut off its end.
    auto anchored = escrow::read_anchor(anchor_path(cfg), id);
    if (!anchored)
        throw Failure("cannot read the audit anchor " + anchor_path(cfg).string() + ": " + anchored.error().message());
    auto anchor = escrow::check_anchor(*rows, anchored->entries);
    std::string anchor_state = !anchor.matches ? "mismatch" : anchored->entries.empty() ? "none" : "matches";
    if (opts.json) {
        auto arr = nlohmann::json::array();
        for (const auto& e : *rows)
            arr.push_back({{"seq", e.seq},
                           {"at", common::iso8601(e.at)},
                           {"event", e.event},
                           {"address", e.address},
                           {"user_agent", e.user_agent},
                           {"detail", e.detail},
                           {"prev_hash", e.prev_hash},
                           {"hash", e.hash}});
        nlohmann::json out = {{"id", id},
                              {"chain", verdict.intact ? "intact" : "broken"},
                              {"rows", verdict.rows},
                              {"problem", verdict.problem},
                              {"anchor",
                               {{"state", anchor_state},
                                {"file", anchor_path(cfg).string()},
                                {"anchored", anchor.anchored},
                                {"head_seq", anchor.head_seq},
                                {"problem", anchor.problem}}},
                              {"entries", arr}};
        std::cout << out.dump(2) << "\n";
    } else {
        std::printf("%-24s  %-22s  %-15s  %s\n", "TIME", "EVENT", "ADDRESS", "DETAIL");
        for (const auto& e : *rows)
            std::printf("%-24s  %-22s  %-15s  %s\n", common::iso8601(e.at).c_str(), e.event.c_str(),
                        e.address.empty() ? "-" : e.address.c_str(), e.detail.c_str());
        if (verdict.intact)
            std::printf("chain: intact (%zu rows, last hash %s)\n", verdict.rows,
                        rows->empty() ? "-" : rows->back().hash.substr(0, 16).c_str());
        else std::printf("chain: BROKEN at %s\n", verdict.problem.c_str());
        if (!anchor.matches)
            std::printf("anchor: MISMATCH: %s (%s)\n", anchor.problem.c_str(), anchor_path(cfg).c_str());
        else if (anchored->entries.empty())
            std::printf("anchor: none for this message in %s%s\n", anchor_path(cfg).c_str(),
                        anchored->file_exists ? "" : " (no such file)");
        else
            std::printf("anchor: matches (%zu rows anchored, head seq %lld)\n", anchor.anchored,
                        static_cast<long long>(anchor.head_seq));
    }
    if (!verdict.intact || !anchor.matches) throw Exit{5};
}

}  // namespace

store::CodeRules escrow_code_rules(const config::Config& cfg) {
    store::CodeRules rules;
    rules.lock_for = std::chrono::duration_cast<std::chrono::seconds>(cfg.escrow.code_lockout);
    rules.max_lock = std::chrono::duration_cast<std::chrono::seconds>(cfg.escrow.code_lockout_max);
    rules.max_failures = static_cast<int>(std::min<std::size_t>(cfg.escrow.code_max_failures, 1'000'000));
    return rules;
}

void add_escrow(CLI::App& app, Options& opts) {
    auto* esc = app.add_subcommand("escrow", "escrowed messages: list, show, revoke, audit");
    esc->require_subcommand(1);

    static bool all = false;
    auto* l = esc->add_subcommand("list", "active escrowed messages (--all: ended ones too)");
    add_common(l, opts, true);
    l->add_flag("--all", all, "include revoked, expired and purged messages");
    l->callback([&opts] { list(opts, all); });

    static std::string show_id;
    auto* s = esc->add_subcommand("show", "one escrowed message's facts (never its content)");
    add_common(s, opts, true);
    s->add_option("ID", show_id, "escrow id")->required();
    s->callback([&opts] { show(opts, show_id); });

    static std::string revoke_id, reason;
    auto* r = esc->add_subcommand("revoke", "destroy a message's key now (it can no longer be read)");
    add_common(r, opts, false);
    r->add_option("ID", revoke_id, "escrow id")->required();
    r->add_option("--reason", reason, "why (recorded in the audit log)");
    r->callback([&opts] { revoke(opts, revoke_id, reason); });

    static std::string audit_id;
    auto* a = esc->add_subcommand("audit", "a message's audit log, with its hash chain verified (exit 5 if broken)");
    add_common(a, opts, true);
    a->add_option("ID", audit_id, "escrow id")->required();
    a->callback([&opts] { audit(opts, audit_id); });
}

}  // namespace mailward::cli
