// `mailward user add|passwd|del|list`: submission accounts. Passwords are read from standard input
// (first line, never from the command line, where other users could see them) and stored as Argon2id.
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <iostream>

#include "cli/cli.hpp"
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
        if (c <= 32 || c == 127) throw Failure("user name '" + name + "' contains spaces or control characters");
    }
}

std::string checked_mode(const std::string& mode) {
    if (mode.empty()) return mode;
    if (!config::parse_sender_mode(mode)) {
        throw Failure("unknown mode '" + mode + "' (tls-or-escrow, tls-only, escrow-always, opportunistic)");
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

    auto* add = u->add_subcommand("add", "add a user (password from stdin)");
    add_common(add, opts, false);
    add->add_option("NAME", name, "login name")->required();
    add->add_option("--mode", mode, "sender mode (default: [policy] default_mode)");
    add->callback([&opts] {
        check_name(name);
        store::User user{name, "", checked_mode(mode), store::Clock::now()};
        auto st = open_store(opts);
        user.password_hash = hash(read_password());
        auto r = st->users().add(user);
        if (!r && r.error() == common::Errc::already_exists) throw Failure("user '" + name + "' already exists");
        if (!r) throw Failure("cannot add user '" + name + "': " + r.error().message());
        std::cout << "user " << name << " added\n";
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
        if (auto r = st->users().update(*user); !r) throw Failure("cannot update '" + name + "': " + r.error().message());
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
            for (const auto& x : *users) arr.push_back({{"name", x.name}, {"mode", x.mode.empty() ? def : x.mode},
                                                        {"mode_is_default", x.mode.empty()}});
            std::cout << arr.dump(2) << "\n";
            return;
        }
        for (const auto& x : *users) {
            std::cout << x.name << "  " << (x.mode.empty() ? def + " (default)" : x.mode) << "\n";
        }
    });
}

}  // namespace mailward::cli
