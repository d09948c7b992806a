// The key-holder process and its client: the fork (before serve drops root), the child's loop
// (read the master key, drop to [server] user, answer requests), the checks an unwrap request must
// pass against the store, and RemoteKeyHolder's one-request-at-a-time calls with a reply timeout.
// Every request is parsed by keyholder_wire.cpp's length-checked parser; secrets in buffers are
// zeroed after use.
#include "escrow/keyholder.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "escrow/keyholder_wire.hpp"

namespace mailward::escrow {
namespace {

using Clock = std::chrono::system_clock;

// The keyed-hash purposes escrow uses (service.cpp, audit.cpp); any other is refused.
constexpr std::string_view kMacPurposes[] = {"token", "otp", "session", "csrf-pre", "audit"};

void wipe(std::string& s) {
    if (!s.empty()) sodium_memzero(s.data(), s.size());
    s.clear();
}

std::string error_response(EscrowErrc e, std::string_view reason) {
    wire::Response r;
    r.status = static_cast<std::uint8_t>(e);
    r.payload = std::string(reason.substr(0, wire::kMaxPayload));
    return *wire::encode_response(r);
}

std::string ok_response(std::string payload) {
    wire::Response r;
    r.payload = std::move(payload);
    auto out = wire::encode_response(r);
    wipe(r.payload);
    if (!out) return error_response(EscrowErrc::bad_parameters, "reply too large");
    return std::move(*out);
}

bool send_all(int fd, std::string_view msg) {
    for (;;) {
        const ssize_t n = ::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL);
        if (n >= 0) return static_cast<std::size_t>(n) == msg.size();
        if (errno != EINTR) return false;
    }
}

// One datagram, at most kMaxMessage bytes (a larger one is reported as oversize by its size).
// Returns the datagram's real size, 0 at EOF, -1 on error or timeout (timeout_ms >= 0).
ssize_t recv_one(int fd, std::string& buf, int timeout_ms) {
    if (timeout_ms >= 0) {
        pollfd p{fd, POLLIN, 0};
        int r = 0;
        do {
            r = ::poll(&p, 1, timeout_ms);
        } while (r < 0 && errno == EINTR);
        if (r <= 0) return -1;
    }
    buf.resize(wire::kMaxMessage + 1);
    for (;;) {
        const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_TRUNC);
        if (n >= 0) {
            buf.resize(std::min(static_cast<std::size_t>(n), buf.size()));
            return n;
        }
        if (errno != EINTR) return -1;
    }
}

bool same_bytes(std::string_view a, std::string_view b) {
    return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

[[noreturn]] void child_main(const KeyHolderSettings& settings, std::vector<int> fds, pid_t parent) {
    ::prctl(PR_SET_NAME, "mailward-keys", 0, 0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    // Not dumpable, whatever the user: serve runs as the same uid, and must not ptrace this process
    // or read its memory through /proc (the drop below clears the flag too, as root is left).
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (::getppid() != parent) ::_exit(0);  // serve died before the line above
    // serve's signals are serve's: the key holder ends when serve closes the socket or dies.
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGTERM, SIG_IGN);
    ::signal(SIGHUP, SIG_IGN);
    ::signal(SIGPIPE, SIG_IGN);

    auto fail = [&fds](const KeyFileError& e) {
        const auto status = e.code.category() == escrow_category() ? static_cast<EscrowErrc>(e.code.value())
                                                                   : EscrowErrc::master_key_unreadable;
        for (int fd : fds) (void)send_all(fd, error_response(status, e.message));
        ::_exit(1);
    };
    auto made = ensure_master_key_file(settings.master_key_file);
    if (!made) fail(made.error());
    if (*made) spdlog::info("created master key {} (0600)", settings.master_key_file.string());
    auto holder = MasterKeyHolder::load(settings.master_key_file);
    if (!holder) fail(holder.error());
    // Kept open (read-only, never read again) for the process's life, so that `ls -l /proc/*/fd`
    // or lsof on the key file names the one process that holds the key.
    [[maybe_unused]] const int held = ::open(settings.master_key_file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (settings.drop_to) {
        if (auto r = common::drop_privileges(*settings.drop_to); !r)
            fail(KeyFileError{EscrowErrc::crypto_failure, "key holder: cannot switch to user " +
                                                              settings.drop_to->name + ": " + r.error().message()});
        // The uid change cleared the parent-death signal: set it again.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (::getppid() != parent) ::_exit(0);
    }
    const KeyId id = (*holder)->key_id();
    for (int fd : fds)
        if (!send_all(fd, ok_response(std::string(reinterpret_cast<const char*>(id.data()), id.size())))) ::_exit(1);
    spdlog::info(
        "key holder: pid {} holds the master key {} (key id {}), running as uid {}, "
        "{} client(s)",
        ::getpid(), settings.master_key_file.string(), to_hex(id), ::getuid(), fds.size());

    KeyHolderService service(**holder, settings.open_reader, settings.limits);
    // fds[0] is serve's; the others are its children's. One request at a time, from any of them.
    std::vector<pollfd> polled;
    for (int fd : fds) polled.push_back(pollfd{fd, POLLIN, 0});
    std::string buf;
    for (;;) {
        for (auto& p : polled) p.revents = 0;
        int ready = ::poll(polled.data(), polled.size(), -1);
        if (ready < 0) {
            if (errno == EINTR) continue;
            ::_exit(1);
        }
        for (std::size_t i = 0; i < polled.size(); ++i) {
            if (polled[i].fd < 0 || polled[i].revents == 0) continue;
            const int fd = polled[i].fd;
            const ssize_t n = recv_one(fd, buf, -1);  // poll said it is readable
            if (n <= 0) {
                if (i == 0) ::_exit(n == 0 ? 0 : 1);  // serve closed its end: it is stopping
                ::close(fd);                          // a child's end: that child is gone; serve notices and stops
                polled[i].fd = -1;
                continue;
            }
            std::string reply =
                static_cast<std::size_t>(n) > wire::kMaxMessage
                    ? error_response(EscrowErrc::malformed, wire::make_error_code(wire::WireErrc::oversize).message())
                    : service.handle(buf, Clock::now());
            wipe(buf);
            const bool sent = send_all(fd, reply);
            wipe(reply);
            if (!sent) {
                if (i == 0) ::_exit(1);
                ::close(fd);
                polled[i].fd = -1;
            }
        }
    }
}

}  // namespace

// ---- the key holder's decisions ----

KeyHolderService::KeyHolderService(const KeyHolder& keys, ReaderFactory open_reader, SessionLimits limits)
    : keys_(keys), open_reader_(std::move(open_reader)), limits_(limits) {}

std::string KeyHolderService::handle(std::string_view bytes, Clock::time_point now) {
    auto req = wire::parse_request(bytes);
    if (!req) {
        spdlog::warn("key holder: refused a request: {}", req.error().message());
        return error_response(EscrowErrc::malformed, req.error().message());
    }
    auto& f = req->fields;
    std::string reply;
    switch (req->op) {
        case wire::Op::key_id: {
            const KeyId id = keys_.key_id();
            reply = ok_response(std::string(reinterpret_cast<const char*>(id.data()), id.size()));
            break;
        }
        case wire::Op::wrap: {
            auto w = keys_.wrap(f[0], f[1]);
            reply = w ? ok_response(std::move(*w)) : error_response(static_cast<EscrowErrc>(w.error().value()), "");
            break;
        }
        case wire::Op::mac: {
            bool allowed = false;
            for (auto p : kMacPurposes) allowed = allowed || p == f[0];
            if (!allowed) {
                spdlog::warn("key holder: refused a keyed hash for an unknown purpose");
                reply = error_response(EscrowErrc::refused, "unknown purpose");
            } else {
                reply = ok_response(keys_.mac_hex(f[0], f[1]));
            }
            break;
        }
        case wire::Op::unwrap: {
            auto secret = unwrap(UnwrapGrant{f[0], f[1]}, f[2], f[3], now);
            if (secret) {
                reply = ok_response(std::string(secret->view()));
            } else {
                const bool ours = secret.error().category() == escrow_category();
                reply =
                    error_response(ours ? static_cast<EscrowErrc>(secret.error().value()) : EscrowErrc::refused, "");
            }
            break;
        }
    }
    for (auto& field : f) wipe(field);
    return reply;
}

Result<SecretBytes> KeyHolderService::unwrap(const UnwrapGrant& grant, std::string_view wrapped, std::string_view aad,
                                             Clock::time_point now) {
    auto refuse = [&](std::string_view why) -> Result<SecretBytes> {
        spdlog::warn("key holder: refused to unwrap the key of escrow {}: {}", grant.escrow_id.substr(0, 16), why);
        return EscrowErrc::refused;
    };
    if (grant.escrow_id.empty() || grant.session_cookie.empty()) return refuse("no session given");
    if (!reader_) {
        if (!open_reader_) return refuse("no store");
        auto r = open_reader_();
        if (!r) return refuse("cannot open the store: " + r.error().message());
        reader_ = std::move(*r);
    }
    const std::string id_hash = keys_.mac_hex("session", grant.session_cookie);
    auto s = reader_->session(id_hash);
    if (!s) return refuse("no such session");
    if (s->escrow_id != grant.escrow_id) return refuse("the session is for another message");
    if (s->ended_at) return refuse("the session has ended");
    if (now - s->last_seen > limits_.idle || now - s->created > limits_.max) return refuse("the session timed out");
    auto rec = reader_->get(grant.escrow_id);
    if (!rec) return refuse("no such message");
    if (rec->state != store::EscrowState::active)
        return refuse("the message is " + std::string(store::to_string(rec->state)));
    if (now >= rec->expires) return refuse("the message has expired");
    if (rec->wrapped_key.empty() || !same_bytes(rec->wrapped_key, wrapped)) return refuse("not this message's key");
    auto secret = keys_.unwrap(wrapped, aad);
    if (secret)
        spdlog::info("key holder: unwrapped the key of escrow {} for session {}", grant.escrow_id,
                     id_hash.substr(0, 12));
    return secret;
}

// ---- the process ----

Result<KeyHolderProcess> spawn_key_holder(const KeyHolderSettings& settings) {
    std::vector<int> ours, theirs;  // the parent's ends, the key holder's ends
    auto close_all = [&] {
        for (int fd : ours) ::close(fd);
        for (int fd : theirs) ::close(fd);
    };
    for (int i = 0; i <= std::max(0, settings.extra_clients); ++i) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
            const int err = errno;
            close_all();
            return error_code(err, boost::system::system_category());
        }
        ours.push_back(sv[0]);
        theirs.push_back(sv[1]);
    }
    const pid_t parent = ::getpid();
    spdlog::default_logger()->flush();
    const pid_t pid = ::fork();
    if (pid < 0) {
        const int err = errno;
        close_all();
        return error_code(err, boost::system::system_category());
    }
    if (pid == 0) {
        for (int fd : ours) ::close(fd);
        child_main(settings, std::move(theirs), parent);
    }
    for (int fd : theirs) ::close(fd);
    KeyHolderProcess p{pid, ours[0], {}};
    p.extra.assign(ours.begin() + 1, ours.end());
    return p;
}

// ---- the client ----

namespace {
constexpr int kReplyTimeoutMs = 30000;  // longer than the store's busy timeout (10 s)
}

KeyFileResult<std::unique_ptr<RemoteKeyHolder>> RemoteKeyHolder::connect(int fd, std::chrono::milliseconds timeout) {
    std::string buf;
    const ssize_t n = recv_one(fd, buf, static_cast<int>(timeout.count()));
    if (n <= 0) {
        ::close(fd);
        return KeyFileError{EscrowErrc::key_holder_unavailable,
                            n == 0 ? "key holder: exited before it was ready" : "key holder: did not answer"};
    }
    auto r = wire::parse_response(buf);
    if (!r) {
        ::close(fd);
        return KeyFileError{EscrowErrc::key_holder_unavailable, "key holder: " + r.error().message()};
    }
    if (r->status != 0) {
        ::close(fd);
        return KeyFileError{static_cast<EscrowErrc>(r->status), r->payload};
    }
    if (r->payload.size() != kKeyIdBytes) {
        ::close(fd);
        return KeyFileError{EscrowErrc::key_holder_unavailable, "key holder: bad key id"};
    }
    KeyId id{};
    std::memcpy(id.data(), r->payload.data(), id.size());
    return std::unique_ptr<RemoteKeyHolder>(new RemoteKeyHolder(fd, id));
}

RemoteKeyHolder::~RemoteKeyHolder() { ::close(fd_); }

Result<std::string> RemoteKeyHolder::call(int op, std::initializer_list<std::string_view> fields) const {
    wire::Request req;
    req.op = static_cast<wire::Op>(op);
    for (auto f : fields) req.fields.emplace_back(f);
    auto bytes = wire::encode_request(req);
    for (auto& f : req.fields) wipe(f);
    if (!bytes) return EscrowErrc::bad_parameters;
    std::string buf;
    ssize_t n = -1;
    {
        std::lock_guard lock(mu_);
        if (send_all(fd_, *bytes)) n = recv_one(fd_, buf, kReplyTimeoutMs);
        else if (errno == EPIPE || errno == ECONNRESET) n = 0;
    }
    wipe(*bytes);
    auto reply = n > 0 ? wire::parse_response(buf) : Result<wire::Response>(EscrowErrc::key_holder_unavailable);
    wipe(buf);
    if (!reply) {
        // Without the key holder nothing escrow does can be right: stop, and let the supervisor
        // restart serve (docs/operations.md, "Privilege separation").
        spdlog::critical("escrow: the key holder {}; exiting",
                         n == 0  ? "has exited"
                         : n < 0 ? "did not answer within 30 s"
                                 : "sent a malformed reply (" + reply.error().message() + ")");
        spdlog::default_logger()->flush();
        std::_Exit(1);
    }
    if (reply->status != 0) {
        const auto e = static_cast<EscrowErrc>(reply->status);
        wipe(reply->payload);
        return e;
    }
    return std::move(reply->payload);
}

Result<std::string> RemoteKeyHolder::wrap(std::string_view secret, std::string_view aad) const {
    return call(static_cast<int>(wire::Op::wrap), {secret, aad});
}

Result<SecretBytes> RemoteKeyHolder::unwrap(std::string_view, std::string_view) const { return EscrowErrc::refused; }

Result<SecretBytes> RemoteKeyHolder::unwrap_for(const UnwrapGrant& grant, std::string_view wrapped,
                                                std::string_view aad) const {
    auto r = call(static_cast<int>(wire::Op::unwrap), {grant.escrow_id, grant.session_cookie, wrapped, aad});
    if (!r) return r.error();
    SecretBytes secret(r->size());
    if (!secret.ok()) {
        wipe(*r);
        return EscrowErrc::crypto_failure;
    }
    if (!r->empty()) std::memcpy(secret.data(), r->data(), r->size());
    wipe(*r);
    return secret;
}

std::string RemoteKeyHolder::mac_hex(std::string_view purpose, std::string_view data) const {
    auto r = call(static_cast<int>(wire::Op::mac), {purpose, data});
    if (!r) {
        // A refusal here is a programming error (an unknown purpose): no caller may go on
        // with a hash it did not get.
        spdlog::critical("escrow: the key holder refused a keyed hash ({}); exiting", r.error().message());
        spdlog::default_logger()->flush();
        std::_Exit(1);
    }
    return std::move(*r);
}

}  // namespace mailward::escrow
