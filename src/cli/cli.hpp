// Shared pieces of the mailward command line (CLI11): the global options, config loading, and the
// error type every subcommand throws to end with one clear line on stderr and a non-zero exit.
// Exceptions are fine here: this is startup and admin code, not the data path.
#pragma once

#include <CLI/CLI.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "store/escrow_store.hpp"

namespace mailward::cli {

struct Options {
    std::string config_file;  // -c FILE; empty = embedded defaults
    bool json = false;        // --json
};

// Ends the command: main prints "mailward: <what>" and exits with code.
struct Failure : std::runtime_error {
    int code;
    explicit Failure(const std::string& what, int c = 1) : std::runtime_error(what), code(c) {}
};

// Ends the command silently with code (the output already said everything).
struct Exit {
    int code;
};

config::Config load_config(const Options& opts);

// The one-time code rules of [escrow] (escrow_cmd.cpp), for serve and the escrow commands alike.
store::CodeRules escrow_code_rules(const config::Config& cfg);

// Adds -c FILE (and --json when json is true) to a subcommand.
void add_common(CLI::App* cmd, Options& opts, bool json);

void add_serve(CLI::App& app, Options& opts);
void add_queue(CLI::App& app, Options& opts);
void add_user(CLI::App& app, Options& opts);
void add_check(CLI::App& app, Options& opts);
void add_policy(CLI::App& app, Options& opts);
void add_escrow(CLI::App& app, Options& opts);
void add_config(CLI::App& app, Options& opts);  // config_cmd.cpp: `config check`
void add_report(CLI::App& app, Options& opts);  // report_cmd.cpp: `report`
void add_dkim(CLI::App& app, Options& opts);    // dkim_cmd.cpp: `dkim keygen`
void add_tlsrpt(CLI::App& app, Options& opts);  // tlsrpt_cmd.cpp: `tlsrpt send --now`

// `mailward sendmail ARGS` and a binary called as `sendmail` (sendmail_cmd.cpp): sendmail's own
// option syntax, so main() calls it before CLI11 parses anything. Returns a sysexits.h code.
int run_sendmail(const std::vector<std::string>& args);
void add_sendmail_help(CLI::App& app);  // lists it in --help

}  // namespace mailward::cli
