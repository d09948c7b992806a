// Test driver for MTA-STS discovery (RFC 8461) against real peers (test_mta_sts_fetch.py): mailward's
// libunbound resolver pointed at the lab DNS, CurlMtaStsFetcher against the lab HTTPS server, and one
// MtaStsCache kept for the whole run. Reads commands from stdin, one per line, and answers each with
// one JSON line on stdout (input comes from the test: trusted):
//   get DOMAIN [SECONDS]   MtaStsCache::get(DOMAIN, start + SECONDS)   (the injected clock)
//   fetch DOMAIN           CurlMtaStsFetcher::fetch(DOMAIN) alone, no cache
// Exit code 0 at end of input; 1 when the resolver could not be made; 2 on bad usage.
//
// mta_sts_probe [--dns IP:PORT]... [--anchor FILE] [--ca FILE] [--port N] [--timeout-ms N]
//               [--connect-timeout-ms N]
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <iostream>
#include <sstream>
#include <thread>

#include "config/config.hpp"
#include "dns/resolver.hpp"
#include "policy/mta_sts_fetch.hpp"

namespace asio = boost::asio;
using namespace mailward;
using json = nlohmann::json;

namespace {

[[noreturn]] void usage(const std::string& why) {
    std::cerr << "mta_sts_probe: " << why
              << "\nusage: mta_sts_probe [--dns IP:PORT]... [--anchor FILE] [--ca FILE] [--port N]"
                 " [--timeout-ms N] [--connect-timeout-ms N]  (commands on stdin)\n";
    std::exit(2);
}

json policy_json(const policy::MtaStsPolicy& p) {
    return {{"mode", std::string(policy::to_string(p.mode))}, {"mx", p.mx}, {"max_age", p.max_age.count()}};
}

std::string source_name(policy::MtaStsLookup::Source s) {
    switch (s) {
        case policy::MtaStsLookup::Source::none: return "none";
        case policy::MtaStsLookup::Source::cache: return "cache";
        case policy::MtaStsLookup::Source::fetched: return "fetched";
    }
    return "none";
}

// The MtaStsErrc name of an error ("" for none), so that the test need not match messages.
std::string errc_name(const error_code& ec) {
    if (!ec) return "";
    if (ec.category() != policy::mta_sts_category()) return "other";
    switch (static_cast<policy::MtaStsErrc>(ec.value())) {
        case policy::MtaStsErrc::ok: return "";
        case policy::MtaStsErrc::no_record: return "no_record";
        case policy::MtaStsErrc::several_records: return "several_records";
        case policy::MtaStsErrc::bad_record: return "bad_record";
        case policy::MtaStsErrc::bad_policy: return "bad_policy";
        case policy::MtaStsErrc::dns_failed: return "dns_failed";
        case policy::MtaStsErrc::no_address: return "no_address";
        case policy::MtaStsErrc::connect_failed: return "connect_failed";
        case policy::MtaStsErrc::tls_failed: return "tls_failed";
        case policy::MtaStsErrc::timeout: return "timeout";
        case policy::MtaStsErrc::redirect: return "redirect";
        case policy::MtaStsErrc::http_status: return "http_status";
        case policy::MtaStsErrc::content_type: return "content_type";
        case policy::MtaStsErrc::too_large: return "too_large";
        case policy::MtaStsErrc::fetch_failed: return "fetch_failed";
    }
    return "other";
}

}  // namespace

int main(int argc, char** argv) {
    spdlog::set_default_logger(spdlog::stderr_color_mt("mta_sts_probe"));  // stdout is the JSON
    config::DnsConfig dns_cfg;
    policy::MtaStsFetchOptions options;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        if (a == "--dns") {
            auto ep = config::parse_endpoint(value());
            if (!ep) usage("bad --dns");
            dns_cfg.servers.push_back(*ep);
        } else if (a == "--anchor") {
            dns_cfg.trust_anchor_file = value();
        } else if (a == "--ca") {
            options.ca_file = value();
        } else if (a == "--port") {
            const int port = std::stoi(value());
            if (port < 1 || port > 65535) usage("--port: 1..65535");
            options.port = static_cast<unsigned short>(port);
        } else if (a == "--timeout-ms") {
            options.total_timeout = std::chrono::milliseconds(std::stol(value()));
        } else if (a == "--connect-timeout-ms") {
            options.connect_timeout = std::chrono::milliseconds(std::stol(value()));
        } else {
            usage("unknown argument " + a);
        }
    }

    asio::io_context io;
    std::string error;
    auto resolver = dns::make_unbound_resolver(io, dns_cfg, error);
    if (!resolver) {
        std::cerr << "mta_sts_probe: " << error << "\n";
        std::cout << json{{"setup_error", error}}.dump() << std::endl;
        return 1;
    }
    asio::thread_pool blocking{2};
    policy::CurlMtaStsFetcher fetcher(**resolver, blocking, options);
    policy::MtaStsCache cache(**resolver, fetcher);
    auto work = asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    const auto start = std::chrono::system_clock::now();

    std::string line;
    while (std::getline(std::cin, line)) {
        std::istringstream in(line);
        std::string cmd, domain;
        long seconds = 0;
        in >> cmd >> domain >> seconds;
        if (cmd.empty()) continue;
        json out;
        const auto t0 = std::chrono::steady_clock::now();
        if (cmd == "get" && !domain.empty()) {
            const auto now = start + std::chrono::seconds(seconds);
            auto r = asio::co_spawn(io, cache.get(domain, now), asio::use_future).get();
            out = {{"domain", domain},
                   {"status", r.status},
                   {"source", source_name(r.source)},
                   {"id", r.id},
                   {"policy", r.policy ? policy_json(*r.policy) : json(nullptr)},
                   {"error", errc_name(r.error)},
                   {"expires_in", r.policy ? std::chrono::duration_cast<std::chrono::seconds>(r.expires - now).count()
                                           : 0}};
        } else if (cmd == "fetch" && !domain.empty()) {
            auto r = asio::co_spawn(io, fetcher.fetch(domain), asio::use_future).get();
            out = {{"domain", domain},
                   {"ok", static_cast<bool>(r.policy)},
                   {"policy", r.policy ? policy_json(*r.policy) : json(nullptr)},
                   {"error", r.policy ? std::string() : errc_name(r.policy.error())},
                   {"detail", r.detail},
                   {"address", r.address}};
        } else {
            out = {{"usage_error", "unknown command: " + line}};
        }
        out["elapsed_ms"] =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
        std::cout << out.dump() << std::endl;
    }
    work.reset();
    io.stop();
    runner.join();
    blocking.join();
    return 0;
}
