// Test driver for the libunbound resolver against a real DNS server (test_dns.py): resolves every
// NAME TYPE pair given, all at once, through one resolver made from --server/--anchor/--timeout, and
// prints a JSON array with one object per query, in order. Input comes from the test (trusted); only
// loopback servers are used. Exit code 0 when the program ran, whatever the DNS outcome; 1 when the
// resolver could not be made (the reason on stderr and as {"setup_error": ...}).
//
// dns_probe [--server IP:PORT]... [--anchor FILE] [--timeout MS] [--threads N] NAME TYPE [NAME TYPE]...
//   TYPE: MX A AAAA TLSA TXT
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "config/config.hpp"
#include "dns/resolver.hpp"

namespace asio = boost::asio;
using namespace mailward;
using json = nlohmann::json;

namespace {

[[noreturn]] void usage(const std::string& why) {
    std::cerr << "dns_probe: " << why
              << "\nusage: dns_probe [--server IP:PORT]... [--anchor FILE] [--timeout MS] [--threads N]"
                 " NAME TYPE...\n";
    std::exit(2);
}

std::string hex(const std::vector<std::uint8_t>& d) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (auto b : d) {
        out.push_back(digits[b >> 4]);
        out.push_back(digits[b & 15]);
    }
    return out;
}

template <class Answer>
json common_json(const Answer& a) {
    return {{"ok", true}, {"security", std::string(dns::to_string(a.security))}, {"nodata", a.nodata}};
}

json error_json(const error_code& ec) {
    std::string name = "other";
    if (ec.category() == dns::dns_category()) {
        switch (static_cast<dns::DnsErrc>(ec.value())) {
            case dns::DnsErrc::ok: name = "ok"; break;
            case dns::DnsErrc::nxdomain: name = "nxdomain"; break;
            case dns::DnsErrc::servfail: name = "servfail"; break;
            case dns::DnsErrc::timeout: name = "timeout"; break;
            case dns::DnsErrc::bogus: name = "bogus"; break;
            case dns::DnsErrc::bad_response: name = "bad_response"; break;
            case dns::DnsErrc::refused: name = "refused"; break;
        }
    }
    return {{"ok", false}, {"error", name}, {"message", ec.message()}, {"temporary", dns::is_temporary(ec)}};
}

struct Query {
    std::string name, type;
    json result;
};

// One query; the resolver call is chosen by type; the result goes into q. The last query to finish
// stops io (the resolver's fd watch would keep it running).
asio::awaitable<void> run_query(dns::Resolver& r, Query& q, std::atomic<std::size_t>& remaining, asio::io_context& io) {
    const auto start = std::chrono::steady_clock::now();
    std::string name = q.name;
    json j;
    if (q.type == "MX") {
        auto res = co_await r.mx(name);
        if (!res) {
            j = error_json(res.error());
        } else {
            j = common_json(*res);
            j["records"] = json::array();
            for (const auto& m : res->records) {
                j["records"].push_back({{"preference", m.preference}, {"exchange", m.exchange}});
            }
        }
    } else if (q.type == "A" || q.type == "AAAA") {
        Result<dns::AddressAnswer> res = dns::AddressAnswer{};
        if (q.type == "A") {
            res = co_await r.a(name);
        } else {
            res = co_await r.aaaa(name);
        }
        if (!res) {
            j = error_json(res.error());
        } else {
            j = common_json(*res);
            j["records"] = res->addresses;
        }
    } else if (q.type == "TLSA") {
        auto res = co_await r.tlsa(name);
        if (!res) {
            j = error_json(res.error());
        } else {
            j = common_json(*res);
            j["records"] = json::array();
            for (const auto& t : res->records) {
                j["records"].push_back({{"usage", t.usage},
                                        {"selector", t.selector},
                                        {"matching_type", t.matching_type},
                                        {"data", hex(t.data)}});
            }
        }
    } else if (q.type == "TXT") {
        auto res = co_await r.txt(name);
        if (!res) {
            j = error_json(res.error());
        } else {
            j = common_json(*res);
            j["records"] = res->texts;
        }
    }
    const auto elapsed = std::chrono::steady_clock::now() - start;
    j["name"] = q.name;
    j["type"] = q.type;
    j["elapsed_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
    q.result = std::move(j);
    if (--remaining == 0) io.stop();
}

}  // namespace

int main(int argc, char** argv) {
    spdlog::set_default_logger(spdlog::stderr_color_mt("dns_probe"));  // stdout is the JSON
    config::DnsConfig cfg;
    int threads = 1;
    std::vector<std::string> positional;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        if (a == "--server") {
            auto ep = config::parse_endpoint(value());
            if (!ep) usage("bad --server");
            cfg.servers.push_back(*ep);
        } else if (a == "--anchor") {
            cfg.trust_anchor_file = value();
        } else if (a == "--timeout") {
            cfg.timeout = std::chrono::milliseconds(std::stol(value()));
        } else if (a == "--threads") {
            threads = std::stoi(value());
            if (threads < 1 || threads > 16) usage("--threads: 1..16");
        } else if (a.starts_with("--")) {
            usage("unknown option " + a);
        } else {
            positional.push_back(a);
        }
    }
    if (positional.empty() || positional.size() % 2 != 0) usage("give NAME TYPE pairs");
    std::vector<Query> queries;
    for (std::size_t i = 0; i < positional.size(); i += 2) {
        const auto& type = positional[i + 1];
        if (type != "MX" && type != "A" && type != "AAAA" && type != "TLSA" && type != "TXT") {
            usage("bad type " + type);
        }
        queries.push_back({positional[i], type, {}});
    }

    asio::io_context io;
    std::string error;
    auto resolver = dns::make_unbound_resolver(io, cfg, error);
    if (!resolver) {
        std::cerr << "dns_probe: " << error << "\n";
        std::cout << json{{"setup_error", error}}.dump() << "\n";
        return 1;
    }
    std::atomic<std::size_t> remaining = queries.size();
    for (auto& q : queries) asio::co_spawn(io, run_query(**resolver, q, remaining, io), asio::detached);
    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i) pool.emplace_back([&] { io.run(); });
    io.run();
    for (auto& t : pool) t.join();

    json out = json::array();
    for (auto& q : queries) out.push_back(std::move(q.result));
    std::cout << out.dump() << "\n";
    return 0;
}
