// The portal's HTTPS server (Boost.Beast, HTTP/1.1 over TLS 1.2+ only, RFC 9110/9112): one
// coroutine per connection on its own strand; connections limited per client address (IPv6: /64)
// and in all; a request's header is read first and shown to the application's admitter, which
// refuses it or sets its route's body limit before any body is read (413 from Content-Length, or
// as chunks arrive); timeouts for the handshake, the header, the body, keep-alive idling and
// writes (slowloris); GET, HEAD and POST only; security headers on every response. Also serves
// plain HTTP (no TLS context) for serve's /metrics endpoint. The
// application sees plain values (web.hpp); Asio stays out of this header (serve owns the io_context).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "portal/limits.hpp"
#include "portal/web.hpp"

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}
}  // namespace boost::asio

namespace mailward::portal {

struct HttpLimits {
    std::size_t max_header_bytes = 16 * 1024;  // 431 past it
    std::size_t max_body_bytes = 11u << 20;    // no route allows more: 413 from the header alone
    std::chrono::milliseconds handshake_timeout{10'000};
    std::chrono::milliseconds header_timeout{10'000};  // the first request's header, whole
    std::chrono::milliseconds idle_timeout{60'000};    // a later request's header, waiting included
    std::chrono::milliseconds body_timeout{120'000};   // a request's body, whole
    std::chrono::milliseconds write_timeout{60'000};
    std::chrono::milliseconds refusal_timeout{5'000};  // a 429 refusal: handshake, header, answer
    ConnectionRules connections;
    std::string name = "portal";  // what its log lines start with
};

// A small self-contained HTML page for an error status.
HttpResponse error_response(int status, std::string_view text);

class HttpsServer {
  public:
    // endpoint "127.0.0.1:8443" or "[::1]:8443" (port 0: any, see port()). error names the endpoint.
    // tls nullptr: plain HTTP (the same limits and timeouts; handshake_timeout unused), for the
    // Prometheus endpoint on a local address.
    // admitter sees each request's header first (empty: every body up to limits.max_body_bytes).
    static Result<std::unique_ptr<HttpsServer>> start(boost::asio::io_context& io, const std::string& endpoint,
                                                      std::shared_ptr<boost::asio::ssl::context> tls, Handler handler,
                                                      Admitter admitter, HttpLimits limits, std::string& error);
    ~HttpsServer();
    HttpsServer(const HttpsServer&) = delete;
    HttpsServer& operator=(const HttpsServer&) = delete;

    unsigned short port() const;
    // Stops accepting; connections end after their current request (or at their timeout).
    void stop();
    // SIGHUP: connections accepted from now on use tls; open ones keep the context they started with.
    void set_tls(std::shared_ptr<boost::asio::ssl::context> tls);

    struct Impl;

  private:
    explicit HttpsServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
    std::shared_ptr<Impl> impl_;
};

}  // namespace mailward::portal
