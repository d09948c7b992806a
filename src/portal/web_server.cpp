// The portal's HTTPS server (see web_server.hpp). Beast's parser enforces the limits and refuses
// ambiguous framing (Content-Length with Transfer-Encoding, repeated Content-Length), so a request
// is never read two ways (RFC 9112 section 6.3: request smuggling). The header is read alone; the
// body only once the admitter let it in and within its route's limit (Content-Length checked
// before a byte of it is read; 100-continue answered only then). A refused request is answered
// and, when its body was left unread, the connection closed.
#include "portal/web_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
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
#include <mutex>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <functional>
#include <map>

#include "common/ascii.hpp"
#include "portal/http_request.hpp"

namespace mailward::portal {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// How a connection that waits for a request is closed to make room for a newcomer: close runs on
// the connection's strand (ex), and only while done is false (the connection's coroutine sets it
// before its stream goes away).
struct Closer {
    boost::asio::any_io_executor ex;
    std::string ip;
    bool done = false;
    std::function<void()> close;
};

struct HttpsServer::Impl {
    std::shared_ptr<asio::ssl::context> tls;  // tls_mu; set_tls() replaces it for new connections
    std::mutex tls_mu;
    std::shared_ptr<asio::ssl::context> current_tls() {
        std::lock_guard lock(tls_mu);
        return tls;
    }
    Handler handler;
    Admitter admitter;
    HttpLimits limits;
    std::unique_ptr<tcp::acceptor> acceptor;
    std::atomic<bool> stopping{false};
    std::unique_ptr<ConnectionLimiter> connections;
    std::atomic<std::int64_t> last_warning{0};         // steady clock, seconds
    std::atomic<std::int64_t> last_accept_warning{0};  // the same, for accept() failures
    std::atomic<std::int64_t> last_eviction_note{0};   // the same, for connections closed to make room
    std::mutex closers_mu;
    std::map<std::uint64_t, std::weak_ptr<Closer>> closers;  // by the limiter's connection id
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

using common::ascii::iequals;

http::response<http::string_body> to_beast(HttpResponse r, unsigned version, bool keep_alive) {
    http::response<http::string_body> res{static_cast<http::status>(r.status), version};
    for (auto& [k, v] : r.headers) res.insert(k, v);
    for (const auto& [k, v] : kSecurityHeaders) {
        bool set = false;
        for (const auto& h : r.headers) set = set || iequals(h.first, k);
        if (!set) res.set(k, v);
    }
    if (res.find(http::field::content_type) == res.end())
        res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = std::move(r.body);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using PlainStream = beast::tcp_stream;
template <class Stream>
constexpr bool kIsTls = std::is_same_v<Stream, TlsStream>;

template <class Stream>
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

// The application's answer (an Admission or an HttpResponse), awaited without blocking a thread;
// it may come from any thread. failure answers when the application throws.
template <class Value, class App>
asio::awaitable<Value> ask(const App& app, HttpRequest req, Value failure) {
    auto init = [&app, &req, &failure](auto completion) {
        auto ex = asio::get_associated_executor(completion);
        auto work = asio::make_work_guard(ex);
        auto h = std::make_shared<decltype(completion)>(std::move(completion));
        std::function<void(Value)> reply = [h, ex, work](Value v) mutable {
            asio::post(ex, [h, v = std::move(v)]() mutable { (*h)(std::move(v)); });
        };
        try {
            app(std::move(req), reply);
        } catch (const std::exception& e) {
            spdlog::error("portal: the application failed: {}", e.what());
            reply(std::move(failure));
        }
    };
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Value)>(init, asio::use_awaitable);
}

// The status a failed read is answered with; 0: none (the client went away or was too slow).
int status_of(const boost::system::error_code& ec) {
    if (ec == http::error::header_limit) return 431;
    if (ec == http::error::body_limit) return 413;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::ssl::error::stream_truncated || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted)
        return 0;
    return 400;
}

std::string_view text_of(int status) {
    switch (status) {
        case 431: return "The request's header is too large.";
        case 413: return "The request is too large.";
        default: return "The request could not be read.";
    }
}

// Never the query, and never a link token (/m/TOKEN/...): logs are not a place for secrets.
std::string loggable(std::string_view target) {
    std::string logged(target.substr(0, target.find('?')));
    if (logged.rfind("/m/", 0) == 0)
        logged = "/m/(token)" +
                 (logged.find('/', 3) == std::string::npos ? std::string() : logged.substr(logged.find('/', 3)));
    return logged;
}

bool expects_continue(const http::request<http::string_body>& req) {
    auto it = req.find(http::field::expect);
    return it != req.end() && iequals(it->value(), "100-continue");
}

// After an answer that left a body unread: what the client still sends is read and dropped for a
// moment (2 s, 4 MiB at most), so that closing with unread data does not make the kernel reset the
// connection before the client has read the answer (a "lingering close", as nginx does).
template <class Stream>
asio::awaitable<void> discard_for_a_moment(Stream& stream) {
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
    std::array<char, 16384> scratch;
    for (std::size_t dropped = 0; dropped < (4u << 20);) {
        auto [ec, n] = co_await stream.async_read_some(asio::buffer(scratch), asio::as_tuple(asio::use_awaitable));
        if (ec) break;
        dropped += n;
    }
}

// One request whose header has been read: admission, then its body, then the application's
// answer. Returns whether the connection may carry another request.
template <class Stream>
asio::awaitable<bool> exchange(std::shared_ptr<HttpsServer::Impl> srv, Stream& stream, beast::flat_buffer& buffer,
                               http::request_parser<http::string_body>& parser, std::string ip) {
    const auto& limits = srv->limits;
    const auto start = std::chrono::steady_clock::now();
    auto& req = parser.get();
    const bool head = req.method() == http::verb::head;
    bool keep_alive = req.keep_alive() && !srv->stopping;
    bool ok = true;
    HttpRequest hreq = to_request(req, ip, ok);
    HttpResponse response;
    if (req.method() != http::verb::get && req.method() != http::verb::post && !head) {
        response = error_response(405, "This method is not allowed.");
        response.headers.push_back({"Allow", "GET, HEAD, POST"});
    } else if (!ok) {
        response = error_response(400, "The request's target could not be read.");
    } else {
        // Named values, no temporaries, in co_await expressions: g++ 12 destroys some of those twice.
        Admission admission;
        admission.body_limit = limits.max_body_bytes;
        if (srv->admitter) {
            Admission failure;
            failure.refuse = error_response(500, "The request could not be completed.");
            admission = co_await ask<Admission>(srv->admitter, hreq, std::move(failure));
        }
        const std::size_t body_limit = std::min(admission.body_limit, limits.max_body_bytes);
        const auto declared = parser.content_length();
        if (admission.refuse) {
            response = std::move(*admission.refuse);
        } else if (declared && *declared > body_limit) {
            response = error_response(413, "The request is too large.");
        } else {
            parser.body_limit(body_limit);  // a chunked body: 413 as soon as its chunks pass it
            if (!parser.is_done()) {
                boost::system::error_code rec;
                if (expects_continue(req)) {  // RFC 9110 section 10.1.1: the client waits for this
                    http::response<http::empty_body> cont{http::status::continue_, 11};
                    beast::get_lowest_layer(stream).expires_after(limits.write_timeout);
                    auto [wec, n] = co_await http::async_write(stream, cont, asio::as_tuple(asio::use_awaitable));
                    rec = wec;
                }
                if (!rec) {
                    beast::get_lowest_layer(stream).expires_after(limits.body_timeout);
                    auto [bec, n] =
                        co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
                    rec = bec;
                }
                if (rec) {
                    const int status = status_of(rec);
                    if (status) {
                        boost::system::error_code wec;
                        HttpResponse answer = error_response(status, text_of(status));
                        co_await send(stream, std::move(answer), 11, false, false, limits, wec);
                    }
                    spdlog::debug("portal: {} {} {} reading the body from {}: {}", std::string(req.method_string()),
                                  loggable(req.target()), status, ip, rec.message());
                    co_return false;
                }
            }
            hreq.body = std::move(req.body());
            HttpResponse failure = error_response(500, "The request could not be completed.");
            response = co_await ask<HttpResponse>(srv->handler, std::move(hreq), std::move(failure));
        }
    }
    // A body left unread cannot be skipped safely: the connection ends with this answer.
    keep_alive = keep_alive && ok && parser.is_done();
    const int status = response.status;
    const std::size_t bytes = response.body.size();
    boost::system::error_code wec;
    co_await send(stream, std::move(response), req.version(), keep_alive, head, limits, wec);
    if (!wec && !parser.is_done()) co_await discard_for_a_moment(stream);
    spdlog::debug(
        "portal: {} {} {} {} bytes {} ms from {}", std::string(req.method_string()), loggable(req.target()), status,
        bytes, std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count(),
        ip);
    co_return !wec && keep_alive;
}

template <class Stream>
asio::awaitable<void> close(Stream& stream) {
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    if constexpr (kIsTls<Stream>) {
        co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
    } else {
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
}

// The TLS handshake (none over plain HTTP). False: the connection ends.
template <class Stream>
asio::awaitable<bool> handshake(Stream& stream, std::chrono::milliseconds timeout, const std::string& ip) {
    if constexpr (kIsTls<Stream>) {
        beast::get_lowest_layer(stream).expires_after(timeout);
        auto [hec] =
            co_await stream.async_handshake(asio::ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
        if (hec) {
            spdlog::debug("portal: TLS handshake with {} failed: {}", ip, hec.message());
            co_return false;
        }
    }
    co_return true;
}

// tls: the context the connection uses (kept alive by the caller for the connection's life);
// unused over plain HTTP.
template <class Stream>
Stream make_stream(asio::ssl::context* tls, tcp::socket socket) {
    if constexpr (kIsTls<Stream>) {
        return Stream(std::move(socket), *tls);
    } else {
        return Stream(std::move(socket));
    }
}

// At most one warning a second about refused connections (a flood must not flood the log too).
bool time_to_warn(std::atomic<std::int64_t>& last) {
    const std::int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
    std::int64_t before = last.load();
    return before != now && last.compare_exchange_strong(before, now);
}

std::int64_t steady_now() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

// The connection id's closer, while stream lives (see Closer); unregistered at the end.
template <class Stream>
struct Closable {
    std::shared_ptr<HttpsServer::Impl> srv;
    std::uint64_t id;
    std::shared_ptr<Closer> closer = std::make_shared<Closer>();
    Closable(std::shared_ptr<HttpsServer::Impl> s, std::uint64_t i, Stream& stream, const std::string& ip)
        : srv(std::move(s)), id(i) {
        closer->ex = stream.get_executor();
        closer->ip = ip;
        closer->close = [&stream] {
            boost::system::error_code ec;
            beast::get_lowest_layer(stream).socket().close(ec);  // its pending read ends: aborted
        };
        std::lock_guard lock(srv->closers_mu);
        srv->closers[id] = closer;
    }
    ~Closable() {
        closer->done = true;
        closer->close = nullptr;
        std::lock_guard lock(srv->closers_mu);
        srv->closers.erase(id);
    }
};

// Closes connection id (chosen by the limiter; its place is a newcomer's already) on its strand.
void close_to_make_room(HttpsServer::Impl& srv, std::uint64_t id, const std::string& for_ip) {
    std::shared_ptr<Closer> c;
    {
        std::lock_guard lock(srv.closers_mu);
        auto it = srv.closers.find(id);
        if (it != srv.closers.end()) c = it->second.lock();
    }
    if (!c) return;  // it ended meanwhile
    asio::post(c->ex, [c, for_ip, name = srv.limits.name, last = &srv.last_eviction_note] {
        if (c->done) return;
        if (time_to_warn(*last))
            spdlog::info("{}: closed a waiting connection from {} to make room for {} (connection table full)", name,
                         c->ip, for_ip);
        c->close();
    });
}

template <class Stream>
asio::awaitable<void> session(std::shared_ptr<HttpsServer::Impl> srv, tcp::socket socket, std::string ip,
                              std::uint64_t id) {
    const auto& limits = srv->limits;
    const auto tls = srv->current_tls();  // a reload's new context serves later connections
    Stream stream = make_stream<Stream>(tls.get(), std::move(socket));
    Closable<Stream> closable(srv, id, stream, ip);  // after stream: gone before it
    if (!co_await handshake(stream, limits.handshake_timeout, ip)) co_return;
    beast::flat_buffer buffer;
    bool first = true;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
        parser.body_limit(limits.max_body_bytes);  // past every route's limit: 413 from the header
        beast::get_lowest_layer(stream).expires_after(first ? limits.header_timeout : limits.idle_timeout);
        if (!first) srv->connections->waiting(id, true, steady_now());  // keep-alive: waits again
        first = false;
        auto [rec, n] = co_await http::async_read_header(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
        if (!rec) srv->connections->waiting(id, false, steady_now());
        if (rec) {
            if (const int status = status_of(rec)) {
                boost::system::error_code wec;
                HttpResponse answer = error_response(status, text_of(status));
                co_await send(stream, std::move(answer), 11, false, false, limits, wec);
                spdlog::debug("portal: {} from {}: {}", status, ip, rec.message());
            }
            break;
        }
        if (!co_await exchange(srv, stream, buffer, parser, ip)) break;
    }
    co_await close(stream);
}

// A connection over its address's limit: told so with 429 (after its request's header, so the
// client reads the answer), within refusal_timeout in all; its body is never read.
template <class Stream>
asio::awaitable<void> refusal(std::shared_ptr<HttpsServer::Impl> srv, tcp::socket socket, std::string ip) {
    auto limits = srv->limits;
    limits.write_timeout = limits.refusal_timeout;
    const auto tls = srv->current_tls();  // a reload's new context serves later connections
    Stream stream = make_stream<Stream>(tls.get(), std::move(socket));
    if (!co_await handshake(stream, limits.refusal_timeout, ip)) co_return;
    beast::get_lowest_layer(stream).expires_after(limits.refusal_timeout);
    beast::flat_buffer buffer;
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    auto [rec, n] = co_await http::async_read_header(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    if (rec) co_return;
    auto r = error_response(429,
                            "Too many connections from your address. Close other portal pages and try again "
                            "in a minute.");
    r.headers.push_back({"Retry-After", "10"});
    boost::system::error_code wec;
    co_await send(stream, std::move(r), parser.get().version(), false, false, limits, wec);
    co_await close(stream);
}

// Gives the connection's place back when its coroutine is done, however it ends.
struct ConnectionSlot {
    std::shared_ptr<HttpsServer::Impl> srv;
    std::string key;
    ConnectionVerdict verdict;
    std::uint64_t id;  // serve: the limiter's id
    ~ConnectionSlot() {
        if (verdict == ConnectionVerdict::serve) srv->connections->close(id);
        else srv->connections->release(key, verdict);
    }
};

asio::awaitable<void> counted_session(std::shared_ptr<HttpsServer::Impl> srv, tcp::socket socket, std::string ip,
                                      std::string key, ConnectionVerdict verdict, std::uint64_t id) {
    ConnectionSlot slot{srv, std::move(key), verdict, id};
    const bool tls = srv->current_tls() != nullptr;
    if (verdict == ConnectionVerdict::serve && tls)
        co_await session<TlsStream>(srv, std::move(socket), std::move(ip), id);
    else if (verdict == ConnectionVerdict::serve)
        co_await session<PlainStream>(srv, std::move(socket), std::move(ip), id);
    else if (tls) co_await refusal<TlsStream>(srv, std::move(socket), std::move(ip));
    else co_await refusal<PlainStream>(srv, std::move(socket), std::move(ip));
}

asio::awaitable<void> accept_loop(std::shared_ptr<HttpsServer::Impl> srv) {
    for (;;) {
        tcp::socket socket(asio::make_strand(srv->acceptor->get_executor()));
        auto [ec] = co_await srv->acceptor->async_accept(socket, asio::as_tuple(asio::use_awaitable));
        if (srv->stopping) co_return;
        if (ec) {
            if (ec == asio::error::operation_aborted) co_return;
            // Out of descriptors (EMFILE, ENFILE) or memory: the connection stays in the listen
            // queue and the listener readable, so accepting again at once would spin. Wait a
            // moment (connections end meanwhile). Said at most once a second, whatever failed.
            const bool pause_first = ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
                                     ec == asio::error::no_memory ||
                                     ec == boost::system::errc::too_many_files_open_in_system;
            if (time_to_warn(srv->last_accept_warning))
                spdlog::warn("{}: accept failed: {}{}", srv->limits.name, ec.message(),
                             pause_first ? "; pausing accepts briefly" : "");
            if (pause_first) {
                asio::steady_timer pause(srv->acceptor->get_executor(), std::chrono::milliseconds(50));
                co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
            }
            continue;
        }
        boost::system::error_code ep_ec;
        auto remote = socket.remote_endpoint(ep_ec);
        if (ep_ec) continue;
        auto addr = remote.address();
        if (addr.is_v6() && addr.to_v6().is_v4_mapped())
            addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
        const std::string ip = addr.to_string();
        std::string key = address_key(ip).value_or(ip);
        const auto opened = srv->connections->open(key, steady_now());
        const auto verdict = opened.verdict;
        if (opened.victim) close_to_make_room(*srv, opened.victim, ip);
        if (verdict != ConnectionVerdict::serve && time_to_warn(srv->last_warning))
            spdlog::warn("{}: {} a connection from {}: {} connections open, {} from {}", srv->limits.name,
                         verdict == ConnectionVerdict::refuse ? "answered 429 to" : "closed at once", ip,
                         srv->connections->served(), srv->connections->served(key), key);
        if (verdict == ConnectionVerdict::drop) {
            socket.close(ep_ec);
            continue;
        }
        auto ex = socket.get_executor();
        asio::co_spawn(ex, counted_session(srv, std::move(socket), ip, std::move(key), verdict, opened.id),
                       asio::detached);
    }
}

}  // namespace

HttpResponse error_response(int status, std::string_view text) {
    HttpResponse r;
    r.status = status;
    r.headers.push_back({"Content-Type", "text/html; charset=utf-8"});
    r.body =
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
        "content=\"width=device-width, initial-scale=1\"><title>" +
        std::to_string(status) + "</title></head><body><h1>" + std::to_string(status) + "</h1><p>" + html_escape(text) +
        "</p></body></html>\n";
    return r;
}

Result<std::unique_ptr<HttpsServer>> HttpsServer::start(asio::io_context& io, const std::string& endpoint,
                                                        std::shared_ptr<asio::ssl::context> tls, Handler handler,
                                                        Admitter admitter, HttpLimits limits, std::string& error) {
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
    impl->admitter = std::move(admitter);
    impl->limits = limits;
    impl->connections = std::make_unique<ConnectionLimiter>(limits.connections);
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

void HttpsServer::set_tls(std::shared_ptr<asio::ssl::context> tls) {
    if (!tls) return;  // a server stays HTTPS or plain HTTP as it was started
    std::lock_guard lock(impl_->tls_mu);
    impl_->tls = std::move(tls);
}

void HttpsServer::stop() {
    if (impl_->stopping.exchange(true)) return;
    boost::system::error_code ec;
    impl_->acceptor->close(ec);
}

}  // namespace mailward::portal
