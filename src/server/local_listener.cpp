// The local submission socket ([sendmail] socket, docs/operations.md "Local programs: sendmail"):
// an AF_UNIX stream socket, mode 0666, on which `mailward sendmail` speaks ESMTP (RFC 5321) to the
// same Session as the TCP listeners. The identity is the peer's uid from the kernel (SO_PEERCRED,
// unix(7)), never anything the client says; the session then has the limits of any other.
// Bound by start() before the process drops privileges; a stale socket file is replaced only
// when no server answers on it.
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <spdlog/spdlog.h>

#include "common/log_escape.hpp"
#include "server/server_impl.hpp"
#include "server/session.hpp"

namespace mailward::server {
namespace {

using local_stream = asio::local::stream_protocol;

// The peer's uid, and its name from the user database (empty when it has none).
std::optional<LocalPeer> peer_of(int fd, const config::Config& cfg) {
    struct ucred cred {};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return std::nullopt;
    LocalPeer p;
    p.uid = cred.uid;
    struct passwd pw {};
    struct passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (::getpwuid_r(cred.uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) p.user = pw.pw_name;
    const auto& trusted = cfg.sendmail.trusted_users;
    p.may_set_sender =
        p.uid == 0 || (!p.user.empty() && (p.user == cfg.server.user ||
                                           std::find(trusted.begin(), trusted.end(), p.user) != trusted.end()));
    return p;
}

void refuse(SessionSocket& socket, const std::string& line) {
    boost::system::error_code ec;
    asio::write(socket, asio::buffer(line), ec);
    socket.close(ec);
}

asio::awaitable<void> local_accept_loop(std::shared_ptr<SubmissionServer::Impl> srv, local_stream::acceptor* acceptor) {
    const std::string& host = srv->cfg.server.hostname;
    for (;;) {
        local_stream::socket accepted(asio::make_strand(acceptor->get_executor()));
        auto [ec] = co_await acceptor->async_accept(accepted, asio::as_tuple(asio::use_awaitable));
        if (srv->stopping) co_return;
        if (ec) {
            if (ec == asio::error::operation_aborted) co_return;
            // Out of descriptors: pause as the TCP listeners do (server.cpp) instead of spinning.
            const bool pause_first = out_of_resources(ec);
            if (srv->accept_errors.note())
                spdlog::warn("local accept failed: {}{}", ec.message(), pause_first ? "; pausing accepts briefly" : "");
            if (pause_first) {
                asio::steady_timer pause(acceptor->get_executor(), std::chrono::milliseconds(50));
                co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
            }
            continue;
        }
        auto peer = peer_of(accepted.native_handle(), srv->cfg);
        SessionSocket socket(std::move(accepted));
        if (!peer || peer->user.empty()) {
            const std::string uid = peer ? std::to_string(peer->uid) : "?";
            spdlog::warn("local: refused a connection from uid {}: no user name for it", uid);
            refuse(socket, "554 5.7.1 " + host + " uid " + uid + " has no user name; cannot submit\r\n");
            continue;
        }
        auto adm = srv->admit("local");
        for (auto& s : adm.wake) s->wake();
        if (adm.victim) adm.victim->evict("local");
        if (adm.result != SubmissionServer::Impl::Admit::ok) {
            spdlog::warn("local: refused a connection from uid {} user {}: connection limit", peer->uid,
                         common::log_escape(peer->user));
            refuse(socket, "421 4.7.0 " + host + " Too many connections, try later\r\n");
            continue;
        }
        start_local_session(srv, std::move(socket), std::move(*peer));
    }
}

// Makes room for the socket at path: a missing directory is made (0755), a stale socket file
// (nobody answers) removed. Empty result = ready to bind; otherwise why not.
std::string prepare_path(const std::filesystem::path& path, asio::io_context& io) {
    const auto dir = path.parent_path();
    if (!dir.empty()) {
        if (::mkdir(dir.c_str(), 0755) == 0) {
            ::chmod(dir.c_str(), 0755);  // whatever the umask: every local user must reach the socket
        } else if (errno != EEXIST) {
            return "cannot make its directory " + dir.string() + ": " + std::strerror(errno);
        }
    }
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT ? "" : std::strerror(errno);
    if (!S_ISSOCK(st.st_mode)) return "the path exists and is not a socket";
    local_stream::socket probe(io);
    boost::system::error_code ec;
    probe.connect(local_stream::endpoint(path.string()), ec);
    if (!ec) return "address already in use (another mailward answers on it)";
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        return std::string("cannot remove the stale socket: ") + std::strerror(errno);
    return "";
}

}  // namespace

Result<void> start_local_listener(std::shared_ptr<SubmissionServer::Impl> srv, asio::io_context& io,
                                  std::string& error) {
    const auto& path = srv->cfg.sendmail.socket;
    if (path.empty()) return {};
    const std::string where = "cannot listen on " + path.string() + ": ";
    if (path.string().size() >= sizeof(sockaddr_un::sun_path)) {
        error = where + "path too long for a unix socket (at most " +
                std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " octets)";
        return common::Errc::invalid_argument;
    }
    if (std::string why = prepare_path(path, io); !why.empty()) {
        error = where + why;
        return common::Errc::io_error;
    }
    auto acc = std::make_unique<local_stream::acceptor>(io);
    boost::system::error_code ec;
    acc->open(local_stream(), ec);
    if (!ec) acc->bind(local_stream::endpoint(path.string()), ec);
    // Every local user may connect: the kernel's SO_PEERCRED says who they are.
    if (!ec && ::chmod(path.c_str(), 0666) != 0) ec.assign(errno, boost::system::system_category());
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        error = where + ec.message();
        return ec;
    }
    spdlog::info("submission listening on {} (local programs: mailward sendmail)", path.string());
    asio::co_spawn(io, local_accept_loop(srv, acc.get()), asio::detached);
    srv->local_acceptor = std::move(acc);
    srv->local_path = path.string();
    return {};
}

void stop_local_listener(SubmissionServer::Impl& srv) {
    if (!srv.local_acceptor) return;
    boost::system::error_code ec;
    srv.local_acceptor->close(ec);
    // Best effort: after the privilege drop the directory may not be ours; the next start
    // replaces a stale file anyway.
    if (!srv.local_path.empty()) ::unlink(srv.local_path.c_str());
    srv.local_path.clear();
}

}  // namespace mailward::server
