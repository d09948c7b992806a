// Config loading and common options for every subcommand.
#include "cli/cli.hpp"

namespace mailward::cli {

config::Config load_config(const Options& opts) {
    if (opts.config_file.empty()) return config::defaults();
    config::ConfigError err;
    auto cfg = config::load(opts.config_file, err);
    if (!cfg) throw Failure(err.message.empty() ? opts.config_file + ": cannot load" : err.message, 2);
    return std::move(*cfg);
}

void add_common(CLI::App* cmd, Options& opts, bool json) {
    cmd->add_option("-c,--config", opts.config_file, "configuration file (TOML)");
    if (json) cmd->add_flag("--json", opts.json, "print JSON");
}

void add_pending(CLI::App& app, Options& opts) {
    struct Pending {
        const char* name;
        const char* what;
    };
    static const Pending pending[] = {
        {"report", "TLS adoption and delivery report"},
    };
    for (const auto& p : pending) {
        auto* cmd = app.add_subcommand(p.name, std::string(p.what) + " (not available in this version)");
        add_common(cmd, opts, true);
        cmd->allow_extras();
        cmd->callback([name = std::string(p.name)] {
            throw Failure("'" + name + "' is not available in this version of mailward yet", 3);
        });
    }
}

}  // namespace mailward::cli
