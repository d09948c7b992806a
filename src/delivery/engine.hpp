// The delivery engine: the scheduler (leases due messages from the store, ready-time ordering,
// retry schedule with jitter, max_queue_lifetime, global and per-destination concurrency) and the
// per-message work (split by recipient domain, route, required TLS level, SMTP client with
// connection reuse, classification, bounces, the delivery log, the attempt's outcome recorded).
#pragma once

#include <memory>
#include <string>

#include "policy/preload.hpp"
#include "probe/probe.hpp"
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
namespace mailward::policy {
class MtaStsCache;
}

namespace mailward::delivery {

class Engine {
  public:
    Engine(boost::asio::io_context& io, const config::Config& cfg, store::Store& store, dns::Resolver& resolver,
           tls::ClientContext tls);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Learning (docs/design.md): before the first delivery to an unknown domain from a sender that
    // is not opportunistic, probe every MX with these options (the engine's resolver and TLS
    // context) and record what all of them support. Without them nothing is probed. Set before start().
    void set_probe_options(probe::ProbeOptions opts);
    // The preload list ([policy] preload_file), one of policy::plan()'s sources. Set before start().
    void set_preload(policy::PreloadList list);
    // MTA-STS policies (RFC 8461), one of policy::plan()'s sources; must outlive the engine. Set before start().
    void set_mta_sts(policy::MtaStsCache* cache);

    void start();
    void stop();
    // New work may be due (a message was queued, an admin asked for a retry). Thread-safe.
    void kick();

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace mailward::delivery
