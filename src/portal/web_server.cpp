// The portal's HTTPS server (see web_server.hpp). Beast's parser enforces the limits and refuses
// ambiguous framing (Content-Length with Transfer-Encoding, repeated Content-Length), so a request
// is never read two ways (RFC 9112 section 6.3: request smuggling). A refused request is answered
// and the connection closed.
#include "portal/web_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <spdlog/spdlog.h>

#include <atomic>


namespace mailward::portal {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpsServer::Impl {
    std::shared_ptr<asio::ssl::context> tls;
    Handler handler;
    HttpLimits limits;
    std::unique_ptr<tcp::acceptor> acceptor;
    std::atomic<bool> stopping{false};
    std::atomic<std::size_t> connections{0};
};

namespace {

// Headers every response carries unless the application set its own.
constexpr std::pair<const char*, const char*> kSecurityHeaders[] = {
    {"Strict-Transport-Security", "max-age=31536000"},
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "no-referrer"},
    {"Cache-Control", "no-store"},
    {"X-Frame-Options", "DENY"},
    {"Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"},
    {"Cross-Origin-Opener-Policy", "same-origin"},
    {"Cross-Origin-Resource-Policy", "same-origin"},
    {"Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()"},
};

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

http::response<http::string_body> to_beast(HttpResponse r, unsigned version, bool keep_alive) {
    http::response<http::string_body> res{static_cast<http::status>(r.status), version};
    for (auto& [k, v] : r.headers) res.insert(k, v);
    for (const auto& [k, v] : kSecurityHeaders) {
        bool set = false;
        for (const auto& h : r.headers) set = set || iequals(h.first, k);
        if (!set) res.set(k, v);
    }
    if (res.find(http::field::content_type) == res.end()) res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = std::move(r.body);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

using Stream = beast::ssl_stream<beast::tcp_stream>;

asio::awaitable<void> send(Stream& stream, HttpResponse r, unsigned version, bool keep_alive, bool head,
                           const HttpLimits& limits, boost::system::error_code& ec) {
    auto res = to_beast(std::move(r), version, keep_alive);
    beast::get_lowest_layer(stream).expires_after(limits.write_timeout);
    if (head) {
        http::response<http::empty_body> h{std::move(res.base())};
        auto [wec, n] = co_await http::async_write(stream, h, asio::as_tuple(asio::use_awaitable));
        ec = wec;
    } else {
        auto [wec, n] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
        ec = wec;
    }
}

HttpRequest to_request(const http::request<http::string_body>& req, const std::string& ip, bool& ok) {
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.remote_address = ip;
    std::string_view t = r.target;
    auto q = t.find('?');
    auto path = percent_decode(t.substr(0, q), false);
    ok = path && !t.empty() && t.front() == '/' && path->find('\0') == std::string::npos;
    if (path) r.path = std::move(*path);
    if (q != std::string_view::npos) r.query = std::string(t.substr(q + 1));
    for (const auto& f : req) {
        std::string name(f.name_string());
        for (auto& c : name)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        r.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    r.body = req.body();
    return r;
}

// The application's answer, awaited without blocking a thread; it may come from any thread.
asio::awaitable<HttpResponse> ask(const Handler& handler, HttpRequest req) {
    auto init = [&handler, &req](auto completion) {
        auto ex = asio::get_associated_executor(completion);
        auto work = asio::make_work_guard(ex);
        auto h = std::make_shared<decltype(completion)>(std::move(completion));
        Respond respond = [h, ex, work](HttpResponse r) mutable {
            asio::post(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
        };
        try {
            handler(std::move(req), respond);
        } catch (const std::exception& e) {
            spdlog::error("portal: the application failed: {}", e.what());
            respond(error_response(500, "The request could not be completed."));
        }
    };
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(HttpResponse)>(init, asio::use_awaitable);
}

asio::awaitable<void> session(std::shared_ptr<HttpsServer::Impl> srv, tcp::socket socket, std::string ip) {
    const auto& limits = srv->limits;
    Stream stream(std::move(socket), *srv->tls);
    beast::get_lowest_layer(stream).expires_after(limits.handshake_timeout);
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
    if (hec) {
        spdlog::debug("portal: TLS handshake with {} failed: {}", ip, hec.message());
        co_return;
    }
    beast::flat_buffer buffer;
    bool first = true;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
        parser.body_limit(limits.max_body_bytes);
        beast::get_lowest_layer(stream).expires_after(first ? limits.read_timeout : limits.idle_timeout);
        first = false;
        auto [rec, n] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
        if (rec) {
            int status = 0;
            if (rec == http::error::header_limit)
                status = 431;
            else if (rec == http::error::body_limit)
                status = 413;
            else if (rec != http::error::end_of_stream && rec != beast::error::timeout && rec != asio::error::eof &&
                     rec != asio::ssl::error::stream_truncated && rec != asio::error::connection_reset)
                status = 400;
            if (status) {
                boost::system::error_code wec;
                co_await send(stream, error_response(status, status == 431   ? "The request's header is too large."
                                                             : status == 413 ? "The request is too large."
                                                                             : "The request could not be read."),
                              11, false, false, limits, wec);
                spdlog::debug("portal: {} from {}: {}", status, ip, rec.message());
            }
            break;
        }
        const auto start = std::chrono::steady_clock::now();
        auto& req = parser.get();
        const bool head = req.method() == http::verb::head;
        const bool keep_alive = req.keep_alive() && !srv->stopping;
        HttpResponse response;
        bool ok = true;
        if (req.method() != http::verb::get && req.method() != http::verb::post && !head) {
            response = error_response(405, "This method is not allowed.");
            response.headers.push_back({"Allow", "GET, HEAD, POST"});
        } else {
            HttpRequest hreq = to_request(req, ip, ok);
            if (!ok)
                response = error_response(400, "The request's target could not be read.");
            else
                response = co_await ask(srv->handler, std::move(hreq));
        }
        const int status = response.status;
        const std::size_t bytes = response.body.size();
        boost::system::error_code wec;
        co_await send(stream, std::move(response), req.version(), keep_alive && ok, head, limits, wec);
        // Never the query, and never a link token (/m/TOKEN/...): logs are not a place for secrets.
        std::string logged(req.target().substr(0, req.target().find('?')));
        if (logged.rfind("/m/", 0) == 0) logged = "/m/(token)" + (logged.find('/', 3) == std::string::npos
                                                                       ? std::string()
                                                                       : logged.substr(logged.find('/', 3)));
        spdlog::debug("portal: {} {} {} {} bytes {} ms from {}", std::string(req.method_string()), logged, status, bytes,
                      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
                          .count(),
                      ip);
        if (wec || !keep_alive || !ok) break;
    }
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
}

// Decrements the connection count when the session's coroutine is done, however it ends.
struct ConnectionSlot {
    std::shared_ptr<HttpsServer::Impl> srv;
    ~ConnectionSlot() { --srv->connections; }
};

asio::awaitable<void> counted_session(std::shared_ptr<HttpsServer::Impl> srv, tcp::socket socket, std::string ip) {
    ConnectionSlot slot{srv};
    co_await session(srv, std::move(socket), std::move(ip));
}

asio::awaitable<void> accept_loop(std::shared_ptr<HttpsServer::Impl> srv) {
    for (;;) {
        tcp::socket socket(asio::make_strand(srv->acceptor->get_executor()));
        auto [ec] = co_await srv->acceptor->async_accept(socket, asio::as_tuple(asio::use_awaitable));
        if (srv->stopping) co_return;
        if (ec) {
            if (ec == asio::error::operation_aborted) co_return;
            spdlog::warn("portal: accept failed: {}", ec.message());
            continue;
        }
        boost::system::error_code ep_ec;
        auto remote = socket.remote_endpoint(ep_ec);
        if (ep_ec) continue;
        auto addr = remote.address();
        if (addr.is_v6() && addr.to_v6().is_v4_mapped()) addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
        if (srv->connections.load() >= srv->limits.max_connections) {
            spdlog::warn("portal: refused a connection from {}: {} connections open", addr.to_string(),
                         srv->connections.load());
            socket.close(ep_ec);
            continue;
        }
        ++srv->connections;
        auto ex = socket.get_executor();
        asio::co_spawn(ex, counted_session(srv, std::move(socket), addr.to_string()), asio::detached);
    }
}

}  // namespace

HttpResponse error_response(int status, std::string_view text) {
    HttpResponse r;
    r.status = status;
    r.headers.push_back({"Content-Type", "text/html; charset=utf-8"});
    r.body = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
             "content=\"width=device-width, initial-scale=1\"><title>" +
             std::to_string(status) + "</title></head><body><h1>" + std::to_string(status) + "</h1><p>" +
             html_escape(text) + "</p></body></html>\n";
    return r;
}

Result<std::unique_ptr<HttpsServer>> HttpsServer::start(asio::io_context& io, const std::string& endpoint,
                                                         std::shared_ptr<asio::ssl::context> tls, Handler handler,
                                                         HttpLimits limits, std::string& error) {
    std::string host, port;
    if (!endpoint.empty() && endpoint.front() == '[') {
        auto close = endpoint.find("]:");
        if (close == std::string::npos) {
            error = "bad endpoint '" + endpoint + "' (expected [ADDRESS]:PORT)";
            return common::Errc::invalid_argument;
        }
        host = endpoint.substr(1, close - 1);
        port = endpoint.substr(close + 2);
    } else {
        auto colon = endpoint.rfind(':');
        if (colon == std::string::npos) {
            error = "bad endpoint '" + endpoint + "' (expected ADDRESS:PORT)";
            return common::Errc::invalid_argument;
        }
        host = endpoint.substr(0, colon);
        port = endpoint.substr(colon + 1);
    }
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    unsigned long p = 0;
    try {
        std::size_t used = 0;
        p = std::stoul(port, &used);
        if (used != port.size() || p > 65535) ec = asio::error::invalid_argument;
    } catch (const std::exception&) {
        ec = asio::error::invalid_argument;
    }
    if (ec) {
        error = "cannot listen on " + endpoint + ": bad address or port";
        return common::Errc::invalid_argument;
    }
    auto impl = std::make_shared<Impl>();
    impl->tls = std::move(tls);
    impl->handler = std::move(handler);
    impl->limits = limits;
    impl->acceptor = std::make_unique<tcp::acceptor>(io);
    tcp::endpoint ep(addr, static_cast<unsigned short>(p));
    auto& acc = *impl->acceptor;
    acc.open(ep.protocol(), ec);
    if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acc.bind(ep, ec);
    if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        error = "cannot listen on " + endpoint + ": " + ec.message();
        return ec;
    }
    asio::co_spawn(io, accept_loop(impl), asio::detached);
    return std::unique_ptr<HttpsServer>(new HttpsServer(std::move(impl)));
}

HttpsServer::~HttpsServer() { stop(); }

unsigned short HttpsServer::port() const {
    boost::system::error_code ec;
    auto ep = impl_->acceptor->local_endpoint(ec);
    return ec ? 0 : ep.port();
}

void HttpsServer::stop() {
    if (impl_->stopping.exchange(true)) return;
    boost::system::error_code ec;
    impl_->acceptor->close(ec);
}

}  // namespace mailward::portal
