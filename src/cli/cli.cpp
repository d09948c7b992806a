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

}  // namespace mailward::cli
