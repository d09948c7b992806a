// Submission listeners: bind, accept, admit (total and per client network limits, stress
// eviction of idle sessions when full), hand each connection to a session coroutine. A refused
// connection gets one 421 line and is closed.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "common/log_escape.hpp"
#include "server/client_net.hpp"
#include "server/counters.hpp"
#include "server/server_impl.hpp"
#include "server/session.hpp"

namespace mailward::server {
namespace {

constexpr auto kAcceptPause = std::chrono::milliseconds(50);

asio::awaitable<void> accept_loop(std::shared_ptr<SubmissionServer::Impl> srv, tcp::acceptor* acceptor,
                                  bool implicit_tls) {
    for (;;) {
        // Each connection gets its own strand: its session and watchdog coroutines share it.
        tcp::socket socket(asio::make_strand(acceptor->get_executor()));
        auto [ec] = co_await acceptor->async_accept(socket, asio::as_tuple(asio::use_awaitable));
        if (srv->stopping) co_return;
        if (ec) {
            if (ec == asio::error::operation_aborted) co_return;
            // Out of descriptors (EMFILE, ENFILE) or memory: the connection stays in the listen
            // queue and the listener stays readable, so accepting again at once would spin. Wait a
            // moment (sessions end meanwhile). Said at most once a second.
            const bool pause_first = out_of_resources(ec);
            if (srv->accept_errors.note())
                spdlog::warn("accept failed: {}{}", ec.message(), pause_first ? "; pausing accepts briefly" : "");
            if (pause_first) {
                asio::steady_timer pause(acceptor->get_executor(), kAcceptPause);
                co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
            }
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
        const auto cfg = srv->config();
        std::string net = client_network(ip, cfg->submission.ipv4_prefix, cfg->submission.ipv6_prefix);
        auto adm = srv->admit(net);
        for (auto& s : adm.wake) s->wake();
        if (adm.victim) adm.victim->evict(ip);
        const auto admit = adm.result;
        if (admit != SubmissionServer::Impl::Admit::ok) {
            // Plain text even on the TLS port: the client learns why instead of a handshake hang.
            std::string line =
                admit == SubmissionServer::Impl::Admit::too_many_total
                    ? "421 4.7.0 " + cfg->server.hostname + " Too many connections, try later\r\n"
                    : "421 4.7.0 " + cfg->server.hostname + " Too many connections from your address, try later\r\n";
            count_rejection("too_many_connections");
            spdlog::warn("refused connection from {} ({}): {}", ip, net,
                         admit == SubmissionServer::Impl::Admit::too_many_total ? "total limit" : "per-network limit");
            if (!implicit_tls) {
                boost::system::error_code wec;
                asio::write(socket, asio::buffer(line), wec);
            }
            socket.close(ep_ec);
            continue;
        }
        count_connection(implicit_tls ? "implicit_tls" : "submission");
        start_session(srv, std::move(socket), implicit_tls, ip, net);
    }
}

}  // namespace

SubmissionServer::Impl::Admission SubmissionServer::Impl::admit(const std::string& net) {
    // Sessions locked below are kept alive until conn_mu is released: a last reference dropped
    // under the lock would run ~Session, which takes conn_mu to release its slot.
    std::vector<std::shared_ptr<Session>> keep;
    Admission a;
    const auto live = config();
    std::lock_guard lock(conn_mu);
    const auto& sub = live->submission;
    auto it = per_net.find(net);
    const std::size_t mine = it == per_net.end() ? 0 : it->second;
    if (mine >= sub.max_connections_per_ip) {
        a.result = Admit::too_many_from_net;
        return a;
    }
    if (total_connections - evicting >= sub.max_connections) {
        // Full: close the longest-idle session of the network holding the most slots, if it holds
        // at least two more than the newcomer's (so networks cannot push each other out in turn).
        // Sessions not yet authenticated (nor trusted) go first.
        std::shared_ptr<Session> best;
        std::size_t best_count = 0;
        bool best_priv = true;
        std::int64_t best_idle = 0;
        for (auto& [id, weak] : sessions) {
            auto s = weak.lock();
            if (!s) continue;
            keep.push_back(s);
            if (!s->idle() || s->evicting()) continue;
            auto pn = per_net.find(s->net());
            const std::size_t count = pn == per_net.end() ? 0 : pn->second;
            if (count < mine + 2) continue;
            const bool priv = s->privileged();
            const std::int64_t idle_since = s->idle_since();
            const bool better =
                !best || (best_priv && !priv) ||
                (priv == best_priv && (count > best_count || (count == best_count && idle_since < best_idle)));
            if (better) {
                best = s;
                best_count = count;
                best_priv = priv;
                best_idle = idle_since;
            }
        }
        if (!best || !best->mark_evicting()) {
            a.result = Admit::too_many_total;
            return a;
        }
        ++evicting;
        // The victim's slot counts for its network no more (release() knows): the next choice
        // sees the network as it will be.
        if (auto pn = per_net.find(best->net()); pn != per_net.end() && --pn->second == 0) per_net.erase(pn);
        a.victim = std::move(best);
    }
    ++per_net[net];
    ++total_connections;
    const bool was = stressed.load();
    update_stress();
    if (!was && stressed.load()) {
        for (auto& [id, weak] : sessions) {
            if (auto s = weak.lock()) a.wake.push_back(std::move(s));
        }
    }
    return a;
}

void SubmissionServer::Impl::update_stress() {
    const std::size_t used = total_connections - evicting;
    stressed = used * 5 >= live_max_connections * 4;
}

std::size_t SubmissionServer::Impl::connections() {
    std::lock_guard lock(conn_mu);
    return total_connections;
}

std::shared_ptr<const config::Config> SubmissionServer::Impl::config() const {
    std::lock_guard lock(live_mu);
    return live_cfg;
}

std::shared_ptr<asio::ssl::context> SubmissionServer::Impl::tls() const {
    std::lock_guard lock(live_mu);
    return live_tls;
}

std::uint64_t SubmissionServer::Impl::add_session(std::weak_ptr<Session> s) {
    std::lock_guard lock(conn_mu);
    const std::uint64_t id = ++next_session_id;
    sessions.emplace(id, std::move(s));
    return id;
}

void SubmissionServer::Impl::release(const std::string& net, std::uint64_t id, bool was_evicting) {
    std::lock_guard lock(conn_mu);
    --total_connections;
    sessions.erase(id);
    if (was_evicting) {
        --evicting;  // its network's count was taken down when it was chosen
    } else if (auto it = per_net.find(net); it != per_net.end() && --it->second == 0) {
        per_net.erase(it);
    }
    update_stress();
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
    if (auto r = start_local_listener(impl_, io, error); !r) {
        // Only the built-in default may be missing, and only for a serve not started as root.
        if (::geteuid() == 0 || impl_->cfg.sendmail.socket != config::SendmailConfig{}.socket) return r;
        spdlog::warn("{} (no local submission; set [sendmail] socket to a writable path)", error);
        error.clear();
    }
    return {};
}

void SubmissionServer::set_on_queued(std::function<void()> f) { impl_->on_queued = std::move(f); }

void SubmissionServer::reload(const config::Config& cfg, std::shared_ptr<asio::ssl::context> tls) {
    auto next = std::make_shared<const config::Config>(cfg);
    {
        std::lock_guard lock(impl_->live_mu);
        impl_->live_cfg = std::move(next);
        if (tls) impl_->live_tls = std::move(tls);
    }
    std::lock_guard lock(impl_->conn_mu);
    impl_->live_max_connections = cfg.submission.max_connections;
    impl_->update_stress();
}

std::size_t SubmissionServer::connections() { return impl_->connections(); }

void SubmissionServer::drain() {
    impl_->draining = true;
    stop();
    std::vector<std::shared_ptr<Session>> open;
    {
        std::lock_guard lock(impl_->conn_mu);
        for (auto& [id, weak] : impl_->sessions) {
            if (auto s = weak.lock()) open.push_back(std::move(s));
        }
    }
    for (auto& s : open) s->shut_down();
}

void SubmissionServer::stop() {
    impl_->stopping = true;
    for (auto& acc : impl_->acceptors) {
        boost::system::error_code ec;
        acc->close(ec);
    }
    stop_local_listener(*impl_);
}

}  // namespace mailward::server
