// The portal's HTTPS server (Boost.Beast, HTTP/1.1 over TLS 1.2+ only, RFC 9110/9112): one
// coroutine per connection on its own strand, limits on header and body size, timeouts for the
// handshake, each request as a whole (slowloris), keep-alive idling and writes; GET, HEAD and POST
// only; security headers on every response. The application sees plain values (http_types.hpp);
// Asio stays out of this header (serve owns the io_context).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "portal/web.hpp"

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}
}  // namespace boost::asio

namespace mailward::portal {

struct HttpLimits {
    std::size_t max_header_bytes = 16 * 1024;
    std::size_t max_body_bytes = 16u << 20;  // 413 past it (reply uploads)
    std::chrono::seconds handshake_timeout{10};
    std::chrono::seconds read_timeout{30};   // the whole first request of a connection
    std::chrono::seconds idle_timeout{60};   // a later request on a kept-alive connection, whole
    std::chrono::seconds write_timeout{60};
    std::size_t max_connections = 1000;      // beyond: accepted and closed at once
};

// A small self-contained HTML page for an error status.
HttpResponse error_response(int status, std::string_view text);

class HttpsServer {
  public:
    // endpoint "127.0.0.1:8443" or "[::1]:8443" (port 0: any, see port()). error names the endpoint.
    static Result<std::unique_ptr<HttpsServer>> start(boost::asio::io_context& io, const std::string& endpoint,
                                                      std::shared_ptr<boost::asio::ssl::context> tls, Handler handler,
                                                      HttpLimits limits, std::string& error);
    ~HttpsServer();
    HttpsServer(const HttpsServer&) = delete;
    HttpsServer& operator=(const HttpsServer&) = delete;

    unsigned short port() const;
    // Stops accepting; connections end after their current request (or at their timeout).
    void stop();

    struct Impl;

  private:
    explicit HttpsServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
    std::shared_ptr<Impl> impl_;
};

}  // namespace mailward::portal
