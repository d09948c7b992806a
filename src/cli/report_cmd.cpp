// `mailward report [--since 30d] [--json | --html FILE]`: "Who supports TLS?" for this
// organisation's traffic over a period - messages and recipient domains by the TLS level reached,
// per day; domains learned and raised; incidents; escrow usage and read rate; the domains that most
// often force escrow. Reads only: the delivery log (delivery_log.hpp's reader, as `policy simulate`)
// and the store (learned policy, audit, incidents, escrow records and audit) through store::open,
// so both backends work. report/ counts and renders; this file reads, checks input and writes.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "cli/cli.hpp"
#include "common/ascii.hpp"
#include "common/duration.hpp"
#include "delivery/delivery_log.hpp"
#include "report/report.hpp"
#include "store/store.hpp"

namespace mailward::cli {
namespace {

template <class T>
T must(Result<T> r, const std::string& what) {
    if (!r) throw Failure("cannot read " + what + " from the store: " + r.error().message());
    return std::move(*r);
}

// Writes text to path through a temporary file beside it, so that a reader never sees half a page.
void write_file(const std::filesystem::path& path, const std::string& text) {
    const auto tmp = std::filesystem::path(path.string() + ".tmp");
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) throw Failure("cannot write the report to " + path.string() + ": " + std::strerror(errno));
        out << text;
        out.flush();
        if (!out) {
            std::error_code ec;
            std::filesystem::remove(tmp, ec);
            throw Failure("cannot write the report to " + path.string() + ": " + std::strerror(errno));
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::filesystem::remove(tmp, ec);
        throw Failure("cannot write the report to " + path.string() + ": " + ec.message());
    }
}

void run_report(const Options& opts, const std::string& since_text, const std::string& html_path) {
    // Input first: a bad --since or --html is an error before anything is read.
    const auto since = common::parse_duration(since_text);
    if (!since || since->count() <= 0)
        throw Failure("--since '" + since_text + "' is not a duration (e.g. 30d, 12h)", 2);
    if (*since > report::kMaxPeriod)
        throw Failure("--since '" + since_text + "' is longer than the longest period, 366d", 2);
    if (!html_path.empty()) {
        const auto parent = std::filesystem::absolute(html_path).parent_path();
        std::error_code ec;
        if (!std::filesystem::is_directory(parent, ec))
            throw Failure("cannot write the report to " + html_path + ": no directory " + parent.string(), 2);
        if (std::filesystem::is_directory(html_path, ec))
            throw Failure("cannot write the report to " + html_path + ": it is a directory", 2);
    }
    const auto cfg = load_config(opts);
    const auto now = report::Clock::now();
    const auto from = now - std::chrono::duration_cast<report::Clock::duration>(*since);
    report::Builder b(since_text, from, now);
    std::set<std::string> domains;

    const auto log_path = cfg.server.data_dir / "delivery.log";
    const auto scan = delivery::read_log(log_path, from, [&](const delivery::LogEntry& e) {
        b.add(e);
        domains.insert(e.domain);
    });
    if (!scan) throw Failure("cannot read the delivery log " + log_path.string() + ": " + scan.error().message());
    b.add_scan(*scan);

    auto st = store::open(cfg);
    if (!st) throw Failure("cannot open the store in " + cfg.server.data_dir.string() + ": " + st.error().message());
    auto& ps = (*st)->policy();
    for (const auto& p : must(ps.list(), "the learned policy")) {
        b.add_learned(p);
        domains.insert(p.domain);
    }
    auto& es = (*st)->escrow();
    for (const auto& rec : must(es.list(true), "the escrow records")) {
        if (rec.created < from) continue;
        b.add_escrow(rec, must(es.audit(rec.id), "the escrow audit of " + rec.id));
        const auto at = rec.recipient.rfind('@');
        if (at != std::string::npos) domains.insert(common::ascii::lower(rec.recipient.substr(at + 1)));
    }
    // The audit and incidents of every domain the period or the learned policy names.
    for (const auto& d : domains) {
        for (const auto& a : must(ps.audit(d), "the policy audit of " + d)) b.add_audit(a);
        for (const auto& i : must(ps.incidents(d), "the incidents of " + d)) b.add_incident(i);
    }
    const auto r = b.finish();
    if (!html_path.empty()) {
        write_file(html_path, report::render_html(r));
        std::cout << "report written to " << html_path << "\n";
        return;
    }
    if (opts.json) {
        std::cout << report::render_json(r).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        return;
    }
    std::cout << report::render_text(r);
}

}  // namespace

void add_report(CLI::App& app, Options& opts) {
    auto* cmd = app.add_subcommand("report", "Who supports TLS? Messages and domains by TLS level, escrow, incidents");
    add_common(cmd, opts, false);
    static std::string since = "30d";
    static std::string html;
    cmd->add_option("--since", since, "the period, a duration up to 366d (default 30d)");
    auto* json = cmd->add_flag("--json", opts.json, "print the report as JSON");
    cmd->add_option("--html", html, "write the report as one self-contained HTML page to FILE")->excludes(json);
    cmd->callback([&opts] { run_report(opts, since, html); });
}

}  // namespace mailward::cli
