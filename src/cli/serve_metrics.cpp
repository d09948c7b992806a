// The /metrics endpoint and the queue gauges (serve_metrics.hpp).
#include "cli/serve_metrics.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <mutex>

#include "cli/cli.hpp"
#include "common/metrics.hpp"

namespace mailward::cli {

std::optional<portal::HttpResponse> metrics_refusal(const portal::HttpRequest& req) {
    if (req.path != "/metrics") {
        portal::HttpResponse r;
        r.status = 404;
        r.body = "Not found: the metrics are at /metrics.\n";
        return r;
    }
    if (req.method != "GET" && req.method != "HEAD") {
        portal::HttpResponse r;
        r.status = 405;
        r.headers.push_back({"Allow", "GET, HEAD"});
        r.body = "Method not allowed: GET /metrics.\n";
        return r;
    }
    return std::nullopt;
}

void add_queue_gauges(store::Store& store) {
    struct Cache {
        std::mutex mu;
        std::chrono::steady_clock::time_point at{};
        std::string text;
    };
    auto cache = std::make_shared<Cache>();
    common::metrics::set_collector([&store, cache]() -> std::string {
        std::lock_guard lk(cache->mu);
        const auto now = std::chrono::steady_clock::now();
        if (cache->at != std::chrono::steady_clock::time_point{} && now - cache->at < std::chrono::seconds(1))
            return cache->text;
        auto& queue = store.queue();
        auto by_state = queue.pending_by_state();
        auto messages = queue.count();
        std::string out;
        if (by_state) {
            std::size_t queued = 0, awaiting = 0;
            for (const auto& [state, n] : *by_state) {
                if (state == "queued") queued = n;
                if (state == "awaiting_escrow") awaiting = n;
            }
            out +=
                "# HELP mailward_queue_recipients Recipients waiting in the queue, by state.\n"
                "# TYPE mailward_queue_recipients gauge\n";
            out += "mailward_queue_recipients{state=\"awaiting_escrow\"} " + std::to_string(awaiting) + "\n";
            out += "mailward_queue_recipients{state=\"queued\"} " + std::to_string(queued) + "\n";
        } else {
            spdlog::debug("metrics: cannot count the queue: {}", by_state.error().message());
        }
        if (messages) {
            out +=
                "# HELP mailward_queue_messages Messages with recipients waiting in the queue.\n"
                "# TYPE mailward_queue_messages gauge\nmailward_queue_messages " +
                std::to_string(*messages) + "\n";
        }
        cache->at = now;
        cache->text = out;
        return out;
    });
}

std::unique_ptr<portal::HttpsServer> start_metrics_endpoint(boost::asio::io_context& io, const config::Config& cfg) {
    if (cfg.metrics.listen.empty()) return nullptr;
    // An open port: small caps and short timeouts (a scraper asks one request at a time).
    portal::HttpLimits limits;
    limits.name = "metrics";
    limits.max_header_bytes = 8 * 1024;
    limits.max_body_bytes = 0;
    limits.header_timeout = std::chrono::seconds(5);
    limits.idle_timeout = std::chrono::seconds(30);
    limits.body_timeout = std::chrono::seconds(5);
    limits.write_timeout = std::chrono::seconds(10);
    limits.refusal_timeout = std::chrono::seconds(2);
    limits.connections.total = 16;
    limits.connections.per_address = 8;
    limits.connections.refusals_per_address = 2;
    limits.connections.refusals_total = 4;
    std::string error;
    auto server = portal::HttpsServer::start(
        io, cfg.metrics.listen, nullptr,
        [](portal::HttpRequest, portal::Respond respond) {
            portal::HttpResponse r;
            r.headers.push_back({"Content-Type", "text/plain; version=0.0.4; charset=utf-8"});
            r.body = common::metrics::render();
            respond(std::move(r));
        },
        [](portal::HttpRequest req, portal::Admit admit) {
            portal::Admission a;
            a.refuse = metrics_refusal(req);
            admit(std::move(a));
        },
        limits, error);
    if (!server) throw Failure("metrics.listen: " + error);
    spdlog::info("metrics: Prometheus endpoint on http://{}/metrics", cfg.metrics.listen);
    return std::move(*server);
}

}  // namespace mailward::cli
