// The Prometheus endpoint of `mailward serve` ([metrics] listen, docs/operations.md "Metrics"):
// GET /metrics over plain HTTP on the portal's web server (limits, timeouts, connection caps),
// answering the shared registry of every process (common/metrics.hpp) in the text format 0.0.4,
// with the queue's size by state read from the store at scrape time. Other paths: 404; other
// methods: 405.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "portal/web.hpp"
#include "portal/web_server.hpp"
#include "store/store.hpp"

namespace mailward::cli {

// The answer to one request's header (nullopt: admitted, the handler answers with the metrics).
std::optional<portal::HttpResponse> metrics_refusal(const portal::HttpRequest& req);

// Adds the queue gauges (mailward_queue_recipients{state}, mailward_queue_messages) to this
// process's render(), read from store at most once a second. store must outlive every render().
void add_queue_gauges(store::Store& store);

// Starts serving cfg.metrics.listen on io (nullptr when it is empty). Throws Failure when it
// cannot listen.
std::unique_ptr<portal::HttpsServer> start_metrics_endpoint(boost::asio::io_context& io, const config::Config& cfg);

}  // namespace mailward::cli
