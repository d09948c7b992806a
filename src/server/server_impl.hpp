// Internal to src/server: the state shared by the listeners and every session (config, store,
// TLS context, connection counters, the blocking pool for Argon2id). Includes Asio; not exported.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "server/server.hpp"
#include "store/store.hpp"

namespace mailward::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct SubmissionServer::Impl : std::enable_shared_from_this<SubmissionServer::Impl> {
    Impl(const config::Config& c, store::Store& s, std::shared_ptr<asio::ssl::context> t)
        : cfg(c), store(s), tls(std::move(t)) {}

    const config::Config& cfg;
    store::Store& store;
    std::shared_ptr<asio::ssl::context> tls;
    asio::thread_pool blocking{2};
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    std::atomic<bool> stopping{false};
    std::function<void()> on_queued;  // the delivery engine's kick

    // Connection admission: total and per client address.
    std::mutex conn_mu;
    std::size_t total_connections = 0;
    std::map<std::string, std::size_t> per_ip;

    enum class Admit { ok, too_many_total, too_many_from_ip };
    Admit admit(const std::string& ip);
    void release(const std::string& ip);
};

// Runs one SMTP session on socket (already accepted and admitted). implicit_tls: handshake first.
void start_session(std::shared_ptr<SubmissionServer::Impl> server, tcp::socket socket, bool implicit_tls,
                   std::string client_ip);

}  // namespace mailward::server
