// `mailward tlsrpt send --now [--day YYYY-MM-DD | --today]`: sends the TLS-RPT (RFC 8460) reports
// of one UTC day now, as serve does once a day (tlsrpt/send.hpp): the previous day by default.
// One line per domain and destination; exit 1 when any report failed, 0 otherwise (also when
// every report was sent already: a report goes out once).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <iostream>

#include "cli/cli.hpp"
#include "dns/resolver.hpp"
#include "store/store.hpp"
#include "tlsrpt/send.hpp"

namespace mailward::cli {
namespace {

void run_tlsrpt_send(const Options& opts, bool now, std::string day, bool today) {
    if (!now) throw Failure("tlsrpt send: --now is required (serve sends the reports on its own, once a day)", 2);
    auto cfg = load_config(opts);
    const auto at = std::chrono::system_clock::now();
    if (today) day = tlsrpt::utc_day(at);
    if (day.empty()) day = tlsrpt::utc_day(at - std::chrono::hours(24));
    if (!tlsrpt::day_start(day)) throw Failure("tlsrpt send: --day '" + day + "' is not a date (YYYY-MM-DD)", 2);
    if (!cfg.tlsrpt.enabled) std::cerr << "mailward: note: [tlsrpt] enabled = false: serve records nothing\n";
    auto st = store::open(cfg);
    if (!st) throw Failure("cannot open the store in " + cfg.server.data_dir.string() + ": " + st.error().message());
    boost::asio::io_context io;
    std::string error;
    auto resolver = dns::make_unbound_resolver(io, cfg.dns, error);
    if (!resolver) throw Failure("DNS: " + error);
    boost::asio::thread_pool pool(1);
    std::optional<std::vector<tlsrpt::SendLine>> lines;
    boost::asio::co_spawn(io, tlsrpt::send_day(**st, **resolver, pool, tlsrpt::send_options(cfg), day, at),
                          [&lines, &io](std::exception_ptr e, std::vector<tlsrpt::SendLine> l) {
                              if (!e) lines = std::move(l);
                              io.stop();
                          });
    io.run();
    pool.join();
    (*st)->close();
    if (!lines) throw Failure("tlsrpt send: failed unexpectedly");
    bool failed = false;
    if (lines->empty()) std::cout << "tlsrpt: " << day << ": no TLS sessions recorded\n";
    for (const auto& l : *lines) {
        std::cout << "tlsrpt: " << day << ": " << l.text << "\n";
        failed = failed || l.failed;
    }
    if (failed) throw Exit{1};
}

}  // namespace

void add_tlsrpt(CLI::App& app, Options& opts) {
    auto* cmd = app.add_subcommand("tlsrpt", "SMTP TLS Reporting (RFC 8460)");
    cmd->require_subcommand(1);
    auto* send = cmd->add_subcommand("send", "send the daily TLS reports now (the previous UTC day by default)");
    add_common(send, opts, false);
    static bool now = false;
    static bool today = false;
    static std::string day;
    send->add_flag("--now", now, "send now (required)");
    auto* d = send->add_option("--day", day, "the UTC day to report, YYYY-MM-DD");
    send->add_flag("--today", today, "report the current UTC day so far (tests)")->excludes(d);
    send->callback([&opts] { run_tlsrpt_send(opts, now, day, today); });
}

}  // namespace mailward::cli
