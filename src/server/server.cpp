// Submission listeners: bind, accept, admit (total and per-IP connection limits), hand each
// connection to a session coroutine. A refused connection gets one 421 line and is closed.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "server/server_impl.hpp"

namespace mailward::server {
namespace {

asio::awaitable<void> accept_loop(std::shared_ptr<SubmissionServer::Impl> srv, tcp::acceptor* acceptor,
                                  bool implicit_tls) {
    for (;;) {
        // Each connection gets its own strand: its session and watchdog coroutines share it.
        tcp::socket socket(asio::make_strand(acceptor->get_executor()));
        auto [ec] = co_await acceptor->async_accept(socket, asio::as_tuple(asio::use_awaitable));
        if (srv->stopping) co_return;
        if (ec) {
            if (ec == asio::error::operation_aborted) co_return;
            spdlog::warn("accept failed: {}", ec.message());
            continue;
        }
        boost::system::error_code ep_ec;
        auto remote = socket.remote_endpoint(ep_ec);
        if (ep_ec) continue;
        auto addr = remote.address();
        if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
            addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
        }
        std::string ip = addr.to_string();
        // Replies are small writes the client waits for: no Nagle delay behind a delayed ACK.
        socket.set_option(tcp::no_delay(true), ep_ec);
        auto admit = srv->admit(ip);
        if (admit != SubmissionServer::Impl::Admit::ok) {
            // Plain text even on the TLS port: the client learns why instead of a handshake hang.
            std::string line = admit == SubmissionServer::Impl::Admit::too_many_total
                                   ? "421 4.7.0 " + srv->cfg.server.hostname + " Too many connections, try later\r\n"
                                   : "421 4.7.0 " + srv->cfg.server.hostname +
                                         " Too many connections from your address, try later\r\n";
            spdlog::warn("refused connection from {}: {}", ip,
                         admit == SubmissionServer::Impl::Admit::too_many_total ? "total limit" : "per-IP limit");
            if (!implicit_tls) {
                boost::system::error_code wec;
                asio::write(socket, asio::buffer(line), wec);
            }
            socket.close(ep_ec);
            continue;
        }
        start_session(srv, std::move(socket), implicit_tls, ip);
    }
}

}  // namespace

SubmissionServer::Impl::Admit SubmissionServer::Impl::admit(const std::string& ip) {
    std::lock_guard lock(conn_mu);
    if (total_connections >= cfg.submission.max_connections) return Admit::too_many_total;
    auto& n = per_ip[ip];
    if (n >= cfg.submission.max_connections_per_ip) return Admit::too_many_from_ip;
    ++n;
    ++total_connections;
    return Admit::ok;
}

void SubmissionServer::Impl::release(const std::string& ip) {
    std::lock_guard lock(conn_mu);
    --total_connections;
    auto it = per_ip.find(ip);
    if (it != per_ip.end() && --it->second == 0) per_ip.erase(it);
}

SubmissionServer::SubmissionServer(const config::Config& cfg, store::Store& store,
                                   std::shared_ptr<asio::ssl::context> tls)
    : impl_(std::make_shared<Impl>(cfg, store, std::move(tls))) {}

SubmissionServer::~SubmissionServer() {
    stop();
    impl_->blocking.join();
}

Result<void> SubmissionServer::start(asio::io_context& io, std::string& error) {
    auto bind = [&](const config::Endpoint& ep, bool implicit_tls) -> Result<void> {
        boost::system::error_code ec;
        auto addr = asio::ip::make_address(ep.host, ec);
        if (ec) {
            error = "cannot listen on " + ep.to_string() + ": bad address";
            return ec;
        }
        tcp::endpoint endpoint(addr, ep.port);
        auto acc = std::make_unique<tcp::acceptor>(io);
        acc->open(endpoint.protocol(), ec);
        if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) acc->bind(endpoint, ec);
        if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
            error = "cannot listen on " + ep.to_string() + ": " + ec.message();
            return ec;
        }
        spdlog::info("submission listening on {}{}", ep.to_string(), implicit_tls ? " (implicit TLS)" : "");
        asio::co_spawn(io, accept_loop(impl_, acc.get(), implicit_tls), asio::detached);
        impl_->acceptors.push_back(std::move(acc));
        return {};
    };
    for (const auto& ep : impl_->cfg.submission.listen) {
        if (auto r = bind(ep, false); !r) return r;
    }
    for (const auto& ep : impl_->cfg.submission.tls_listen) {
        if (auto r = bind(ep, true); !r) return r;
    }
    return {};
}

void SubmissionServer::set_on_queued(std::function<void()> f) { impl_->on_queued = std::move(f); }

void SubmissionServer::stop() {
    impl_->stopping = true;
    for (auto& acc : impl_->acceptors) {
        boost::system::error_code ec;
        acc->close(ec);
    }
}

}  // namespace mailward::server
