// Internal to src/server: the state shared by the listeners and every session (config, store,
// TLS context, connection counters per client network, the session table used for stress
// eviction, the blocking pool and AUTH queue for Argon2id). Includes Asio; not exported.
#pragma once

#include <atomic>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "server/auth_queue.hpp"
#include "server/server.hpp"
#include "store/store.hpp"

namespace mailward::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
// A session's socket: TCP from the listeners, AF_UNIX from the local socket (local_listener.cpp).
using SessionSocket = asio::generic::stream_protocol::socket;

// The local user at the other end of the local socket (SO_PEERCRED), who submits as themselves.
struct LocalPeer {
    unsigned uid = 0;
    std::string user;             // the uid's name (getpwuid)
    bool may_set_sender = false;  // root, [server] user or [sendmail] trusted_users
};

class Session;

// accept() failed for want of descriptors, buffers or memory: pausing before the next try helps
// (the listener stays readable, so trying again at once would spin); other failures do not.
inline bool out_of_resources(const boost::system::error_code& ec) {
    return ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space || ec == asio::error::no_memory ||
           ec == boost::system::errc::too_many_files_open_in_system;
}

// At most one log line a second about something that may repeat in a flood (accept failures).
struct OncePerSecond {
    std::atomic<std::int64_t> last{0};  // steady clock, seconds
    bool note() {
        const std::int64_t now =
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch())
                .count();
        std::int64_t before = last.load();
        return before != now && last.compare_exchange_strong(before, now);
    }
};

struct SubmissionServer::Impl : std::enable_shared_from_this<SubmissionServer::Impl> {
    Impl(const config::Config& c, store::Store& s, std::shared_ptr<asio::ssl::context> t)
        : cfg(c), store(s), live_cfg(std::make_shared<const config::Config>(c)), live_tls(std::move(t)) {}

    const config::Config& cfg;  // as started: the listeners, the AUTH queue
    store::Store& store;
    // What a new session takes (SubmissionServer::reload replaces both; open sessions keep theirs).
    std::shared_ptr<const config::Config> config() const;
    std::shared_ptr<asio::ssl::context> tls() const;
    mutable std::mutex live_mu;
    std::shared_ptr<const config::Config> live_cfg;
    std::shared_ptr<asio::ssl::context> live_tls;
    asio::thread_pool blocking{2};
    AuthQueue auth{blocking, cfg.submission.max_auth_failures, cfg.submission.auth_failure_window};
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    std::unique_ptr<asio::local::stream_protocol::acceptor> local_acceptor;  // [sendmail] socket
    std::string local_path;  // the socket file we made (unlinked at stop)
    std::atomic<bool> stopping{false};
    OncePerSecond accept_errors;        // accept() failing (out of descriptors): logged once a second
    std::atomic<bool> draining{false};  // SIGTERM: sessions end after their current transaction
    std::function<void()> on_queued;    // the delivery engine's kick

    // Connection admission: total and per client network (server/client_net.hpp). When the table
    // is full, a newcomer from a network holding fewer slots than another closes that network's
    // longest-idle session not yet authenticated (then authenticated ones); from 80% full the
    // server is under stress and idle sessions get stress_command_timeout.
    std::mutex conn_mu;
    std::size_t total_connections = 0;
    std::size_t evicting = 0;  // sessions told to close for a newcomer, still counted in total
    std::map<std::string, std::size_t> per_net;
    std::map<std::uint64_t, std::weak_ptr<Session>> sessions;
    std::uint64_t next_session_id = 0;
    std::atomic<bool> stressed{false};
    std::size_t live_max_connections = cfg.submission.max_connections;  // conn_mu

    enum class Admit { ok, too_many_total, too_many_from_net };
    struct Admission {
        Admit result = Admit::ok;
        std::shared_ptr<Session> victim;             // close it to make room (after the lock)
        std::vector<std::shared_ptr<Session>> wake;  // stress began: re-arm their timers
    };
    Admission admit(const std::string& net);
    std::uint64_t add_session(std::weak_ptr<Session> s);
    void release(const std::string& net, std::uint64_t id, bool was_evicting);
    void update_stress();  // conn_mu held
    std::size_t connections();
};

// Runs one SMTP session on socket (already accepted and admitted). implicit_tls: handshake first.
void start_session(std::shared_ptr<SubmissionServer::Impl> server, tcp::socket socket, bool implicit_tls,
                   std::string client_ip, std::string client_net);
// Runs one session on the local socket for peer (already admitted under the network "local").
void start_local_session(std::shared_ptr<SubmissionServer::Impl> server, SessionSocket socket, LocalPeer peer);

// Binds [sendmail] socket (local_listener.cpp) and starts accepting on it; error says why not.
Result<void> start_local_listener(std::shared_ptr<SubmissionServer::Impl> server, asio::io_context& io,
                                  std::string& error);
void stop_local_listener(SubmissionServer::Impl& server);

}  // namespace mailward::server
