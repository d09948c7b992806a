// The delivery engine: the scheduler (leases due messages from the store, ready-time ordering,
// retry schedule with jitter, max_queue_lifetime, global and per-destination concurrency) and the
// per-message work (split by recipient domain, route, required TLS level, SMTP client with
// connection reuse, classification, bounces, the delivery log, the attempt's outcome recorded).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "delivery/tlsrpt_step.hpp"
#include "dkim/dkim.hpp"
#include "policy/preload.hpp"
#include "probe/probe.hpp"
#include "tls/client.hpp"

namespace boost::asio {
class io_context;
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
    // The AUTH passwords of [[delivery.routes]] by route name (serve reads the files before it
    // drops privileges). Call before start().
    void set_route_passwords(std::map<std::string, std::string> passwords);
    // The DKIM keys serve read before its privilege drop: every message is signed once per attempt,
    // before its transfers (delivery/dkim_step.hpp). Set before start().
    void set_dkim(std::shared_ptr<const dkim::Signer> signer);
    // TLS-RPT (RFC 8460, delivery/tlsrpt_step.hpp): every new session's TLS outcome to a domain's
    // own MX hosts is handed to recorder ([tlsrpt] enabled). Set before start(); null: none.
    void set_tlsrpt(std::shared_ptr<TlsRptRecorder> recorder);

    void start();
    // Ends at once: deliveries in flight are abandoned (their leases stay until released).
    void stop();
    // SIGTERM (docs/operations.md "Reload and shutdown"): nothing new is leased; done(0) once the
    // deliveries in flight have ended, or done(n) at bound with the n still running (call stop()
    // then; their messages stay queued). Thread-safe; done runs on the engine's strand.
    void drain(std::chrono::milliseconds bound, std::function<void(std::size_t abandoned)> done);
    // SIGHUP: the new configuration (restart-only keys at their running values, config/reload.hpp)
    // and preload list (nullopt: none configured) apply to every attempt that starts after it.
    // Thread-safe.
    void reload(const config::Config& cfg, std::optional<policy::PreloadList> preload);
    // New work may be due (a message was queued, an admin asked for a retry). Thread-safe.
    void kick();

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace mailward::delivery
