// The submission server: listeners on [submission] listen (STARTTLS, RFC 3207) and tls_listen
// (implicit TLS, RFC 8314), connection limits, and one coroutine per connection (session.cpp).
// Asio stays out of this header; serve (src/cli) owns the io_context and passes it in.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/result.hpp"

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}
}  // namespace boost::asio

namespace mailward::config {
struct Config;
}
namespace mailward::store {
class Store;
}

namespace mailward::server {

class SubmissionServer {
  public:
    SubmissionServer(const config::Config& cfg, store::Store& store, std::shared_ptr<boost::asio::ssl::context> tls);
    ~SubmissionServer();
    SubmissionServer(const SubmissionServer&) = delete;
    SubmissionServer& operator=(const SubmissionServer&) = delete;

    // Binds every listener and starts accepting. On failure, error names the endpoint and reason.
    Result<void> start(boost::asio::io_context& io, std::string& error);
    // Stops accepting; open sessions end at their next command or timeout.
    void stop();
    // SIGTERM (docs/operations.md "Reload and shutdown"): stops accepting; a session between
    // transactions is closed with 421 4.3.2 at once, one in a transaction when it ends (its next
    // command gets 421 4.3.2). connections() says when they are all gone.
    void drain();
    std::size_t connections();
    // SIGHUP: sessions that start from now on use cfg (restart-only keys at their running values,
    // config/reload.hpp) and tls (nullptr: keep the current context); open sessions keep theirs.
    void reload(const config::Config& cfg, std::shared_ptr<boost::asio::ssl::context> tls);
    // Called (on an I/O thread) after each message is queued durably; set before start().
    void set_on_queued(std::function<void()> f);

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace mailward::server
