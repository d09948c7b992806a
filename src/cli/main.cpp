// mailward's entry point: parses the command line and runs one subcommand (the interface contract
// of docs/design.md).
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "common/log.hpp"

int main(int argc, char** argv) {
    using namespace mailward::cli;
    // Called as sendmail (/usr/sbin/sendmail -> mailward, mailward-sendmail package) or as
    // `mailward sendmail`: sendmail's own option syntax (-oi, -fADDR, ...), parsed by run_sendmail.
    const char* base = argc > 0 ? std::strrchr(argv[0], '/') : nullptr;
    base = base != nullptr ? base + 1 : (argc > 0 ? argv[0] : "");
    if (std::strcmp(base, "sendmail") == 0) return run_sendmail({argv + 1, argv + argc});
    if (argc > 1 && std::strcmp(argv[1], "sendmail") == 0) return run_sendmail({argv + 2, argv + argc});
    CLI::App app{"mailward - secure outbound mail relay with Forced TLS and escrow"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "mailward 0.1.0");
    // Admin commands print their own results and one error line; library logs stay quiet unless
    // MAILWARD_LOG_LEVEL asks for them. `serve` switches to [server] log_level.
    const char* level = std::getenv("MAILWARD_LOG_LEVEL");
    mailward::common::init_logging(level ? level : "off");
    Options opts;
    add_serve(app, opts);
    add_queue(app, opts);
    add_user(app, opts);
    add_check(app, opts);
    add_policy(app, opts);
    add_escrow(app, opts);
    add_config(app, opts);
    add_report(app, opts);
    add_tlsrpt(app, opts);
    add_dkim(app, opts);
    add_sendmail_help(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "mailward: " << e.what() << " (see mailward --help)\n";
        return 2;
    } catch (const Exit& e) {
        return e.code;
    } catch (const Failure& f) {
        std::cerr << "mailward: " << f.what() << "\n";
        return f.code;
    } catch (const std::exception& e) {
        std::cerr << "mailward: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
