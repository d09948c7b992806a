// The delivery engine: the scheduler (leases due messages from the store, ready-time ordering,
// retry schedule with jitter, max_queue_lifetime, global and per-destination concurrency) and the
// per-message work (split by recipient domain, route, required TLS level, SMTP client with
// connection reuse, classification, bounces, the delivery log, the attempt's outcome recorded).
// Asio stays out of this header.
#pragma once

#include <memory>

#include "tls/client.hpp"

namespace boost::asio {
class io_context;
}
namespace mailward::config {
struct Config;
}
namespace mailward::store {
class Store;
}
namespace mailward::dns {
class Resolver;
}

namespace mailward::delivery {

class Engine {
public:
    Engine(boost::asio::io_context& io, const config::Config& cfg, store::Store& store, dns::Resolver& resolver,
           tls::ClientContext tls);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    void start();
    void stop();
    // New work may be due (a message was queued, an admin asked for a retry). Thread-safe.
    void kick();

    struct Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace mailward::delivery
