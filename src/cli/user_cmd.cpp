// `mailward user add|set|passwd|del|list`: submission accounts. Passwords are read from standard
// input (first line, never from the command line, where other users could see them) and stored as
// Argon2id. --sender binds the envelope and From: addresses an account may use ("a@b", "@domain").
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <iostream>

#include "cli/cli.hpp"
#include "common/log_escape.hpp"
#include "common/password.hpp"
#include "store/store.hpp"

namespace mailward::cli {
namespace {

std::string read_password() {
    if (::isatty(STDIN_FILENO)) std::cerr << "password: " << std::flush;
    std::string pw;
    if (!std::getline(std::cin, pw)) throw Failure("no password on standard input");
    if (!pw.empty() && pw.back() == '\r') pw.pop_back();
    if (pw.size() < 8) throw Failure("password too short (at least 8 characters)");
    if (pw.size() > 1024) throw Failure("password too long (at most 1024 characters)");
    return pw;
}

void check_name(const std::string& name) {
    if (name.empty() || name.size() > 256) throw Failure("user name must be 1-256 characters");
    for (unsigned char c : name) {
        if (c <= 32 || c == 127) {
            throw Failure("user name '" + common::log_escape(name) + "' contains spaces or control characters");
        }
    }
}

std::vector<std::string> checked_senders(const std::vector<std::string>& in) {
    std::vector<std::string> out;
    for (const auto& s : in) {
        auto p = config::parse_sender_pattern(s, false);
        if (!p) {
            throw Failure("bad --sender '" + common::log_escape(s) +
                          "' (expected an address such as alice@example.com, or @example.com for a domain)");
        }
        if (std::find(out.begin(), out.end(), *p) == out.end()) out.push_back(*p);
    }
    return out;
}

std::string checked_mode(const std::string& mode) {
    if (mode.empty()) return mode;
    if (!config::parse_sender_mode(mode)) {
        throw Failure("unknown mode '" + common::log_escape(mode) +
                      "' (tls-or-escrow, tls-only, escrow-always, opportunistic)");
    }
    return mode;
}

std::unique_ptr<store::Store> open_store(const Options& opts) {
    auto cfg = load_config(opts);
    auto s = store::open(cfg);
    if (!s) throw Failure("cannot open the store in " + cfg.server.data_dir.string() + ": " + s.error().message());
    return std::move(*s);
}

std::string hash(const std::string& pw) {
    auto h = common::hash_password(pw);
    if (!h) throw Failure("cannot hash password: " + h.error().message());
    return *h;
}

}  // namespace

void add_user(CLI::App& app, Options& opts) {
    auto* u = app.add_subcommand("user", "manage submission accounts");
    u->require_subcommand(1);
    static std::string name, mode;
    static std::vector<std::string> senders;
    static bool clear_senders = false;
    static bool tls_optional = false, no_tls_optional = false;
    auto tls_flags = [](CLI::App* cmd) {
        auto* on = cmd->add_flag("--allow-tls-optional", tls_optional,
                                 "the account may send with the header TLS-Required: No (RFC 8689)");
        auto* off = cmd->add_flag("--no-allow-tls-optional", no_tls_optional,
                                  "the account may not use TLS-Required: No (the default)");
        on->excludes(off);
    };
    static bool receipts = false, no_receipts = false;
    auto receipt_flags = [](CLI::App* cmd) {
        auto* on =
            cmd->add_flag("--receipts", receipts, "read and expiry receipts for the account's messages kept in escrow");
        auto* off = cmd->add_flag("--no-receipts", no_receipts, "no read or expiry receipts (the default)");
        on->excludes(off);
    };
    auto sender_opt = [](CLI::App* cmd) {
        cmd->add_option("--sender", senders, "an envelope/From: address (or @domain) the account may use; repeatable")
            ->allow_extra_args(false);
    };

    auto* add = u->add_subcommand("add", "add a user (password from stdin)");
    add_common(add, opts, false);
    add->add_option("NAME", name, "login name")->required();
    add->add_option("--mode", mode, "sender mode (default: [policy] default_mode)");
    sender_opt(add);
    tls_flags(add);
    receipt_flags(add);
    add->callback([&opts] {
        check_name(name);
        store::User user{name, "", checked_mode(mode), store::Clock::now()};
        user.senders = checked_senders(senders);
        user.allow_tls_optional = tls_optional;
        user.receipts = receipts;
        auto st = open_store(opts);
        user.password_hash = hash(read_password());
        auto r = st->users().add(user);
        if (!r && r.error() == common::Errc::already_exists) throw Failure("user '" + name + "' already exists");
        if (!r) throw Failure("cannot add user '" + name + "': " + r.error().message());
        std::cout << "user " << name << " added\n";
    });

    auto* set = u->add_subcommand("set", "change an account's mode, senders or TLS-Required permission");
    add_common(set, opts, false);
    set->add_option("NAME", name, "login name")->required();
    set->add_option("--mode", mode, "sender mode");
    sender_opt(set);
    set->add_flag("--clear-senders", clear_senders, "remove every --sender first (then the login name rules)");
    tls_flags(set);
    receipt_flags(set);
    set->callback([&opts] {
        auto checked = checked_senders(senders);
        if (mode.empty() && checked.empty() && !clear_senders && !tls_optional && !no_tls_optional && !receipts &&
            !no_receipts) {
            throw Failure(
                "nothing to change (give --mode, --sender, --clear-senders, --[no-]allow-tls-optional or "
                "--[no-]receipts)");
        }
        auto st = open_store(opts);
        auto user = st->users().get(name);
        if (!user) throw Failure("no user '" + common::log_escape(name) + "'");
        if (!mode.empty()) user->mode = checked_mode(mode);
        if (clear_senders) user->senders.clear();
        for (auto& p : checked) {
            if (std::find(user->senders.begin(), user->senders.end(), p) == user->senders.end()) {
                user->senders.push_back(std::move(p));
            }
        }
        if (tls_optional) user->allow_tls_optional = true;
        if (no_tls_optional) user->allow_tls_optional = false;
        if (receipts) user->receipts = true;
        if (no_receipts) user->receipts = false;
        if (auto r = st->users().update(*user); !r) {
            throw Failure("cannot update '" + common::log_escape(name) + "': " + r.error().message());
        }
        std::cout << "user " << name << " updated\n";
    });

    auto* pw = u->add_subcommand("passwd", "change a password (from stdin), or --mode");
    add_common(pw, opts, false);
    pw->add_option("NAME", name, "login name")->required();
    pw->add_option("--mode", mode, "also change the sender mode");
    pw->callback([&opts] {
        auto st = open_store(opts);
        auto user = st->users().get(name);
        if (!user) throw Failure("no user '" + name + "'");
        if (!mode.empty()) user->mode = checked_mode(mode);
        user->password_hash = hash(read_password());
        if (auto r = st->users().update(*user); !r)
            throw Failure("cannot update '" + name + "': " + r.error().message());
        std::cout << "user " << name << " updated\n";
    });

    auto* del = u->add_subcommand("del", "delete a user");
    add_common(del, opts, false);
    del->add_option("NAME", name, "login name")->required();
    del->callback([&opts] {
        auto st = open_store(opts);
        auto r = st->users().remove(name);
        if (!r && r.error() == common::Errc::not_found) throw Failure("no user '" + name + "'");
        if (!r) throw Failure("cannot delete '" + name + "': " + r.error().message());
        std::cout << "user " << name << " deleted\n";
    });

    auto* list = u->add_subcommand("list", "list users");
    add_common(list, opts, true);
    list->callback([&opts] {
        auto cfg = load_config(opts);
        auto st = open_store(opts);
        auto users = st->users().list();
        if (!users) throw Failure("cannot list users: " + users.error().message());
        const std::string def(config::to_string(cfg.policy.default_mode));
        if (opts.json) {
            auto arr = nlohmann::json::array();
            for (const auto& x : *users) {
                arr.push_back({{"name", x.name},
                               {"mode", x.mode.empty() ? def : x.mode},
                               {"mode_is_default", x.mode.empty()},
                               {"senders", x.senders},
                               {"allow_tls_optional", x.allow_tls_optional},
                               {"receipts", x.receipts}});
            }
            std::cout << arr.dump(2) << "\n";
            return;
        }
        for (const auto& x : *users) {
            std::string senders;
            for (const auto& p : x.senders) senders += (senders.empty() ? "" : ",") + p;
            if (senders.empty()) senders = "-";
            std::cout << x.name << "  " << (x.mode.empty() ? def + " (default)" : x.mode) << "  senders=" << senders
                      << "  tls-optional=" << (x.allow_tls_optional ? "yes" : "no")
                      << "  receipts=" << (x.receipts ? "yes" : "no") << "\n";
        }
    });
}

}  // namespace mailward::cli
