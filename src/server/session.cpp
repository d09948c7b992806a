// One submission session: greeting, command loop, STARTTLS, AUTH, the mail transaction and DATA.
// Replies follow RFC 5321 4.2 with RFC 3463 enhanced codes. See session.hpp for the RFC list.
#include "server/session.hpp"
#include "server/counters.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <vector>

#include "common/blocking.hpp"
#include "common/ids.hpp"
#include "common/log_escape.hpp"
#include "server/header_scan.hpp"
#include "server/received.hpp"
#include "smtp/data.hpp"
#include "tls/server_context.hpp"

namespace mailward::server {
namespace {

constexpr std::size_t kMaxLine = 1000;  // octets including CRLF (RFC 5321 4.5.3.1.4, 4.5.3.1.6)
constexpr auto kTlsHandshakeTimeout = std::chrono::seconds(30);
constexpr auto kGoodbyeTimeout = std::chrono::seconds(10);

using asio::as_tuple;
using asio::use_awaitable;
using common::log_escape;

std::vector<unsigned char> ip_to_bytes(const std::string& ip) {
    boost::system::error_code ec;
    auto a = asio::ip::make_address(ip, ec);
    if (ec) return {};
    if (a.is_v4()) {
        auto b = a.to_v4().to_bytes();
        return {b.begin(), b.end()};
    }
    auto b = a.to_v6().to_bytes();
    return {b.begin(), b.end()};
}

store::BodyType body_type(smtp::Body b) {
    switch (b) {
        case smtp::Body::eight_bit_mime: return store::BodyType::eight_bit_mime;
        case smtp::Body::binary_mime: return store::BodyType::binary_mime;
        default: return store::BodyType::seven_bit;
    }
}

store::DsnRet dsn_ret(smtp::Ret r) {
    switch (r) {
        case smtp::Ret::full: return store::DsnRet::full;
        case smtp::Ret::hdrs: return store::DsnRet::hdrs;
        default: return store::DsnRet::unspecified;
    }
}

// Awaits the store's durable commit; the completion is posted back to the session's executor.
// Not a coroutine (see common/blocking.hpp): the message moves into the initiation.
asio::awaitable<Result<void>> submit_durably(store::QueueStore& q, store::StoredMessage msg) {
    return common::await_callback<Result<void>>(
        [&q, msg = std::move(msg)](auto done) mutable { q.submit(std::move(msg), std::move(done)); });
}

}  // namespace

void start_session(std::shared_ptr<SubmissionServer::Impl> server, tcp::socket socket, bool implicit_tls,
                   std::string client_ip, std::string client_net) {
    // The socket was accepted onto its own strand: both coroutines below run on it.
    auto ex = socket.get_executor();
    auto* srv = server.get();
    auto session = std::make_shared<Session>(std::move(server), SessionSocket(std::move(socket)), implicit_tls,
                                             std::move(client_ip), std::move(client_net));
    session->set_id(srv->add_session(session));
    asio::co_spawn(ex, Session::run(session), asio::detached);
    asio::co_spawn(ex, Session::watchdog(session), asio::detached);
}

void start_local_session(std::shared_ptr<SubmissionServer::Impl> server, SessionSocket socket, LocalPeer peer) {
    auto ex = socket.get_executor();
    auto* srv = server.get();
    auto session =
        std::make_shared<Session>(std::move(server), std::move(socket), false, "local", "local", std::move(peer));
    session->set_id(srv->add_session(session));
    asio::co_spawn(ex, Session::run(session), asio::detached);
    asio::co_spawn(ex, Session::watchdog(session), asio::detached);
}

Session::Session(std::shared_ptr<SubmissionServer::Impl> srv, SessionSocket socket, bool implicit_tls, std::string ip,
                 std::string net, std::optional<LocalPeer> local)
    : srv_(std::move(srv)),
      cfg_hold_(srv_->config()),
      tls_hold_(srv_->tls()),
      cfg_(*cfg_hold_),
      stream_(std::move(socket), *tls_hold_),
      timer_(stream_.get_executor()),
      implicit_tls_(implicit_tls),
      ip_(std::move(ip)),
      net_(std::move(net)),
      local_(std::move(local)) {
    ip_bytes_ = ip_to_bytes(ip_);
    for (const auto& net : cfg_.submission.trusted_networks) {
        if (net.contains(ip_bytes_)) trusted_ = true;
    }
    privileged_ = trusted_ || local_.has_value();  // a local user is identified, as after AUTH
    session_end_ = std::chrono::steady_clock::now() + cfg_.submission.max_session_time;
    set_deadline(cfg_.submission.command_timeout);
}

Session::~Session() { srv_->release(net_, id_, evicting_.load()); }

void Session::set_deadline(std::chrono::milliseconds d) {
    if (timed_out_) return;  // only the goodbye is left
    deadline_ = std::chrono::steady_clock::now() + d;
    timer_.cancel();  // the watchdog re-arms with the new deadline
}

void Session::set_idle(bool idle, bool restart_clock) {
    if (idle && restart_clock) idle_since_ = std::chrono::steady_clock::now().time_since_epoch().count();
    idle_ = idle;
    if (idle && srv_->stressed) timer_.cancel();  // the stress timeout may come first now
}

std::chrono::steady_clock::time_point Session::effective_deadline() const {
    if (timed_out_) return deadline_;  // the goodbye
    auto d = std::min(deadline_, session_end_);
    if (idle_ && srv_->stressed) {
        const auto since =
            std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(idle_since_.load()));
        d = std::min(d, since + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                    cfg_.submission.stress_command_timeout));
    }
    return d;
}

void Session::evict(const std::string& for_ip) {
    asio::post(stream_.get_executor(), [self = shared_from_this(), for_ip] {
        if (self->closed_ || self->timed_out_) return;
        spdlog::info("{}: closing idle session to make room for {} (connection table full)", self->ip_, for_ip);
        self->close_reason_ = CloseReason::evicted;
        self->deadline_ = std::chrono::steady_clock::now();
        self->timer_.cancel();
    });
}

void Session::shut_down() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
        if (self->closed_ || self->timed_out_ || self->in_mail_ || !self->idle_) return;  // run() says it
        self->close_reason_ = CloseReason::shutdown;
        self->deadline_ = std::chrono::steady_clock::now();
        self->timer_.cancel();
    });
}

void Session::wake() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->timer_.cancel(); });
}

std::string Session::timeout_text() const {
    const std::string& host = cfg_.server.hostname;
    switch (close_reason_) {
        case CloseReason::session_time: return host + " Error: session time limit exceeded, closing connection";
        case CloseReason::evicted: return host + " Server busy, closing idle connection";
        case CloseReason::shutdown: return host + " Service shutting down, closing connection";
        default: return host + " Error: timeout exceeded, closing connection";
    }
}

asio::awaitable<void> Session::watchdog(std::shared_ptr<Session> self) {
    while (!self->closed_) {
        self->timer_.expires_at(self->effective_deadline());
        co_await self->timer_.async_wait(as_tuple(use_awaitable));
        if (self->closed_) break;
        const auto now = std::chrono::steady_clock::now();
        if (now >= self->effective_deadline()) {
            if (!self->timed_out_) {
                if (self->close_reason_ == CloseReason::none) {
                    self->close_reason_ = now >= self->session_end_ ? CloseReason::session_time
                                          : now >= self->deadline_  ? CloseReason::timeout
                                                                    : CloseReason::stress_timeout;
                }
                if (self->close_reason_ == CloseReason::session_time) {
                    spdlog::info("{}: session time limit reached, closing", self->ip_);
                } else if (self->close_reason_ == CloseReason::stress_timeout) {
                    spdlog::info("{}: idle under load (stress timeout), closing", self->ip_);
                }
                self->timed_out_ = true;
                boost::system::error_code ec;
                self->stream_.next_layer().cancel(ec);
                self->deadline_ = std::chrono::steady_clock::now() + kGoodbyeTimeout;
            } else {
                boost::system::error_code ec;  // the goodbye itself stalled: drop the connection
                self->stream_.next_layer().close(ec);
                break;
            }
        }
    }
}

void Session::reply(int code, std::string_view enhanced, std::string_view text) {
    out_ += std::to_string(code);
    out_ += ' ';
    if (!enhanced.empty()) {
        out_ += enhanced;
        out_ += ' ';
    }
    out_ += text;
    out_ += "\r\n";
}

void Session::reply(const smtp::Reply& r) { out_ += r.wire(); }

asio::awaitable<bool> Session::flush() {
    if (out_.empty()) co_return true;
    std::string data = std::move(out_);
    out_.clear();
    boost::system::error_code ec;
    if (tls_) {
        std::tie(ec, std::ignore) = co_await asio::async_write(stream_, asio::buffer(data), as_tuple(use_awaitable));
    } else {
        std::tie(ec, std::ignore) =
            co_await asio::async_write(stream_.next_layer(), asio::buffer(data), as_tuple(use_awaitable));
    }
    co_return !ec;
}

asio::awaitable<bool> Session::read_more() {
    if (timed_out_) co_return false;  // timed out while reading something else (a SASL response)
    char buf[16384];
    const std::size_t n = co_await read_into(buf, sizeof buf);
    if (n == 0) co_return false;
    rbuf_.append(buf, n);
    co_return true;
}

asio::awaitable<std::size_t> Session::read_into(char* buf, std::size_t cap) {
    if (!co_await flush()) co_return 0;
    boost::system::error_code ec;
    std::size_t n = 0;
    if (tls_) {
        std::tie(ec, n) = co_await stream_.async_read_some(asio::buffer(buf, cap), as_tuple(use_awaitable));
    } else {
        std::tie(ec, n) =
            co_await stream_.next_layer().async_read_some(asio::buffer(buf, cap), as_tuple(use_awaitable));
    }
    co_return ec ? 0 : n;
}

asio::awaitable<Session::ReadStatus> Session::read_line(std::string& line) {
    bool discarding = false;  // an over-long line: drop it up to its end, then say so
    bool waiting = false;     // the wait for this line has begun
    for (;;) {
        auto nl = rbuf_.find('\n');
        if (nl != std::string::npos) {
            if (discarding || nl + 1 > kMaxLine) {
                rbuf_.erase(0, nl + 1);
                co_return ReadStatus::too_long;
            }
            line.assign(rbuf_, 0, nl);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            rbuf_.erase(0, nl + 1);
            co_return ReadStatus::line;
        }
        if (rbuf_.size() >= kMaxLine) {
            discarding = true;
            rbuf_.clear();
        }
        // The idle clock starts once per line, not at each read: a client sending a byte every few
        // seconds (slowloris) is as idle as a silent one, and under stress it must finish its
        // line within stress_command_timeout (Postfix's smtpd_per_record_deadline).
        set_idle(true, !waiting);
        waiting = true;
        const bool more = co_await read_more();
        set_idle(false);
        if (!more) co_return timed_out_ ? ReadStatus::timeout : ReadStatus::closed;
    }
}

bool Session::junk_command() {
    if (!auth_user_.empty()) return true;
    if (++junk_commands_ > cfg_.submission.max_junk_commands) {
        spdlog::info("{}: too many commands without AUTH or a message ({}), closing", ip_, junk_commands_ - 1);
        reply(421, "4.7.0", cfg_.server.hostname + " Too many commands without a message, closing connection");
        return false;
    }
    return true;
}

std::vector<std::string> Session::allowed_senders() const {
    if (local_) {
        // A local user sends as USER@hostname; root, [server] user and trusted_users as anyone.
        if (local_->may_set_sender) return {"*"};
        auto own = config::parse_sender_pattern(local_->user + "@" + cfg_.server.hostname, false);
        if (own) return {*own};
        return {};
    }
    if (auth_user_.empty()) return cfg_.submission.trusted_senders;
    if (!auth_senders_.empty()) return auth_senders_;
    // No list: the login name, when it is an address (documented in docs/config.md).
    auto own = config::parse_sender_pattern(auth_user_, false);
    if (own && own->front() != '@') return {*own};
    return {};
}

bool Session::bad_command() {
    if (++bad_commands_ >= cfg_.submission.max_bad_commands) {
        reply(421, "4.7.0", cfg_.server.hostname + " Too many errors, closing connection");
        return false;
    }
    return true;
}

void Session::reset_transaction() {
    in_mail_ = false;
    sender_ = {};
    mail_params_ = {};
    rcpts_.clear();
}

bool Session::relay_allowed() const { return trusted_ || !auth_user_.empty() || local_.has_value(); }

smtp::ParseOptions Session::parse_options() const {
    smtp::ParseOptions o;
    o.requiretls = tls_;
    o.transaction_smtputf8 = in_mail_ && mail_params_.smtputf8;  // UTF-8 RCPT needs SMTPUTF8 on MAIL
    o.auth = true;
    o.max_size = cfg_.submission.max_message_size;
    return o;
}

asio::awaitable<void> Session::run(std::shared_ptr<Session> self) {
    auto& s = *self;
    if (s.implicit_tls_) {
        s.set_deadline(kTlsHandshakeTimeout);
        s.set_idle(true);
        auto [ec] = co_await s.stream_.async_handshake(asio::ssl::stream_base::server, as_tuple(use_awaitable));
        s.set_idle(false);
        if (ec) {
            spdlog::info("TLS handshake with {} failed: {}", s.ip_, ec.message());
            s.closed_ = true;
            s.timer_.cancel();
            co_return;
        }
        s.tls_ = true;
    }
    s.set_deadline(s.cfg_.submission.command_timeout);
    s.reply(220, "", s.cfg_.server.hostname + " ESMTP mailward");
    bool go_on = true;
    while (go_on) {
        std::string line;
        if (s.srv_->draining && !s.in_mail_) {  // SIGTERM, and the transaction (if any) is over
            s.close_reason_ = CloseReason::shutdown;
            s.reply(421, "4.3.2", s.timeout_text());
            break;
        }
        s.set_deadline(s.cfg_.submission.command_timeout);
        auto st = co_await s.read_line(line);
        if (st == ReadStatus::closed) break;
        if (st == ReadStatus::timeout) {
            s.reply(421,
                    s.close_reason_ == CloseReason::evicted    ? "4.7.0"
                    : s.close_reason_ == CloseReason::shutdown ? "4.3.2"
                                                               : "4.4.2",
                    s.timeout_text());
            break;
        }
        if (st == ReadStatus::too_long) {
            s.reply(500, "5.5.2", "Line too long (the limit is 1000 octets including CRLF)");
            go_on = s.bad_command();
            continue;
        }
        if (s.srv_->draining && !s.in_mail_) {  // SIGTERM while it waited: no new transaction
            s.close_reason_ = CloseReason::shutdown;
            s.reply(421, "4.3.2", s.timeout_text());
            break;
        }
        auto parsed = smtp::parse_command(line, s.parse_options());
        if (auto* r = std::get_if<smtp::Reply>(&parsed)) {
            s.reply(*r);
            go_on = s.bad_command();
            continue;
        }
        go_on = co_await s.handle(std::get<smtp::Command>(parsed));
    }
    co_await s.flush();
    s.closed_ = true;
    s.timer_.cancel();
    boost::system::error_code ec;
    if (s.tls_ && !s.timed_out_) {
        s.set_deadline(kGoodbyeTimeout);
        s.closed_ = false;  // keep the watchdog for the shutdown exchange
        co_await s.stream_.async_shutdown(as_tuple(use_awaitable));
        s.closed_ = true;
        s.timer_.cancel();
    }
    s.stream_.next_layer().shutdown(SessionSocket::shutdown_both, ec);
    s.stream_.next_layer().close(ec);
}

asio::awaitable<bool> Session::handle(const smtp::Command& cmd) {
    using smtp::Verb;
    const std::string& host = cfg_.server.hostname;
    switch (cmd.verb) {
        // Commands that move no message forward count against max_junk_commands before AUTH.
        case Verb::ehlo:
        case Verb::helo:
        case Verb::starttls:
        case Verb::rset:
        case Verb::noop:
        case Verb::vrfy:
        case Verb::help:
            if (!junk_command()) co_return false;
            break;
        default: break;
    }
    switch (cmd.verb) {
        case Verb::ehlo: on_ehlo(cmd, true); co_return true;
        case Verb::helo: on_ehlo(cmd, false); co_return true;
        case Verb::starttls:
            if (local_) {
                reply(502, "5.5.1", "STARTTLS is not offered on the local socket");
                co_return bad_command();
            }
            co_return co_await on_starttls();
        case Verb::auth:
            if (local_) {
                reply(503, "5.5.1", "Already identified as local user " + local_->user);
                co_return bad_command();
            }
            co_return co_await on_auth(cmd);
        case Verb::mail: on_mail(cmd); co_return bad_commands_ < cfg_.submission.max_bad_commands;
        case Verb::rcpt: on_rcpt(cmd); co_return bad_commands_ < cfg_.submission.max_bad_commands;
        case Verb::data: co_return co_await on_data();
        case Verb::rset:
            reset_transaction();
            reply(250, "2.0.0", "Ok");
            co_return true;
        case Verb::noop: reply(250, "2.0.0", "Ok"); co_return true;
        case Verb::quit: reply(221, "2.0.0", host + " Bye"); co_return false;
        case Verb::vrfy:
            reply(252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery");
            co_return true;
        case Verb::expn: reply(502, "5.5.1", "EXPN is not supported"); co_return bad_command();
        case Verb::help:
            reply(214, "2.0.0", "Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP VRFY HELP QUIT");
            co_return true;
        case Verb::bdat:
            reply(502, "5.5.1", "BDAT is not supported (CHUNKING is not offered)");
            co_return bad_command();
    }
    reply(500, "5.5.2", "Command not recognized");
    co_return bad_command();
}

void Session::on_ehlo(const smtp::Command& cmd, bool extended) {
    reset_transaction();
    helo_ = cmd.argument;
    esmtp_ = extended;
    const std::string& host = cfg_.server.hostname;
    if (!extended) {
        reply(250, "", host);
        return;
    }
    std::vector<std::string> lines{host + " Hello " + cmd.argument + " [" + ip_ + "]",
                                   "PIPELINING",
                                   "SIZE " + std::to_string(cfg_.submission.max_message_size),
                                   "ENHANCEDSTATUSCODES",
                                   "8BITMIME",
                                   "SMTPUTF8",
                                   "DSN"};
    if (local_) {
        // The kernel identified the user (SO_PEERCRED): no AUTH, and no TLS on a local socket.
    } else if (tls_) {
        lines.push_back("AUTH PLAIN LOGIN");
        lines.push_back("REQUIRETLS");
    } else {
        lines.push_back("STARTTLS");
    }
    lines.push_back("HELP");
    for (std::size_t i = 0; i < lines.size(); ++i) {
        out_ += "250";
        out_ += (i + 1 == lines.size()) ? ' ' : '-';
        out_ += lines[i];
        out_ += "\r\n";
    }
}

asio::awaitable<bool> Session::on_starttls() {
    if (tls_) {
        reply(503, "5.5.1", "TLS is already active");
        co_return bad_command();
    }
    reply(220, "2.0.0", "Ready to start TLS");
    if (!co_await flush()) co_return false;
    // RFC 3207 4: anything the client sent after STARTTLS before the handshake is discarded
    // (a command injected in plaintext must never run inside the TLS session).
    if (!rbuf_.empty()) {
        spdlog::warn("{}: discarded {} octets pipelined after STARTTLS", ip_, rbuf_.size());
        rbuf_.clear();
    }
    set_deadline(kTlsHandshakeTimeout);
    set_idle(true);
    auto [ec] = co_await stream_.async_handshake(asio::ssl::stream_base::server, as_tuple(use_awaitable));
    set_idle(false);
    if (ec) {
        spdlog::info("STARTTLS handshake with {} failed: {}", ip_, ec.message());
        co_return false;
    }
    tls_ = true;
    // RFC 3207 4.2: forget everything learned before TLS.
    helo_.reset();
    esmtp_ = false;
    auth_user_.clear();
    auth_mode_.clear();
    auth_senders_.clear();
    privileged_ = trusted_;
    reset_transaction();
    co_return true;
}

void Session::on_mail(const smtp::Command& cmd) {
    if (!helo_) {
        reply(503, "5.5.1", "Send EHLO or HELO first");
        bad_command();
        return;
    }
    if (in_mail_) {
        reply(503, "5.5.1", "Nested MAIL command (send RSET first)");
        bad_command();
        return;
    }
    if (!esmtp_ && (cmd.mail.size || cmd.mail.body != smtp::Body::unspecified || cmd.mail.smtputf8 ||
                    cmd.mail.requiretls || cmd.mail.ret != smtp::Ret::unspecified || !cmd.mail.envid.empty())) {
        reply(555, "5.5.4", "MAIL parameters need EHLO, not HELO");
        bad_command();
        return;
    }
    if (cmd.mail.body == smtp::Body::binary_mime) {
        reply(555, "5.5.4", "BODY=BINARYMIME needs CHUNKING, which is not offered");
        bad_command();
        return;
    }
    if (!relay_allowed()) {
        // Reject at MAIL already: outside trusted networks nothing is accepted without AUTH.
        count_rejection("auth_required");
        reply(530, "5.7.0", tls_ ? "Authentication required" : "Authentication required: use STARTTLS and AUTH");
        bad_command();
        return;
    }
    // A local user's envelope sender is checked whatever sender_login_match says ([sendmail]
    // trusted_users is the one list of who may choose it).
    if ((cfg_.submission.sender_login_match || local_) && !cmd.path.empty() &&
        !config::sender_allowed(allowed_senders(), cmd.path.to_string())) {
        // Sender binding (Postfix's reject_sender_login_mismatch): 553 5.7.1 at MAIL.
        const std::string who = local_               ? "local user " + local_->user
                                : auth_user_.empty() ? std::string("this client")
                                                     : "user " + auth_user_;
        spdlog::warn("{}: sender <{}> rejected: not allowed for {}", ip_, log_escape(cmd.path.to_string()),
                     log_escape(who));
        count_rejection("sender_not_owned");
        reply(553, "5.7.1", "<" + cmd.path.to_string() + ">: Sender address rejected: not owned by " + who);
        bad_command();
        return;
    }
    in_mail_ = true;
    sender_ = cmd.path;
    mail_params_ = cmd.mail;
    reply(250, "2.1.0", "Sender <" + sender_.to_string() + "> ok");
}

void Session::on_rcpt(const smtp::Command& cmd) {
    if (!in_mail_) {
        reply(503, "5.5.1", "Need MAIL command first");
        bad_command();
        return;
    }
    if (!relay_allowed()) {
        count_rejection("relay_denied");
        reply(554, "5.7.1", "<" + cmd.path.to_string() + ">: Relay access denied");
        bad_command();
        return;
    }
    if (cmd.path.domain.empty()) {
        reply(550, "5.1.3", "<" + cmd.path.to_string() + ">: recipient needs a domain");
        bad_command();
        return;
    }
    if (rcpts_.size() >= cfg_.submission.max_recipients) {
        reply(452, "4.5.3",
              "Too many recipients (the limit is " + std::to_string(cfg_.submission.max_recipients) + " per message)");
        return;
    }
    // Non-ASCII recipients need SMTPUTF8 on MAIL (RFC 6531 3.4); the parser enforces the syntax.
    store::Recipient r;
    r.address = cmd.path.to_string();
    r.orcpt = cmd.rcpt.orcpt;
    r.notify = cmd.rcpt.notify;
    rcpts_.push_back(std::move(r));
    reply(250, "2.1.5", "Recipient <" + cmd.path.to_string() + "> ok");
}

asio::awaitable<bool> Session::on_data() {
    if (!in_mail_) {
        reply(503, "5.5.1", "Need MAIL command first");
        co_return bad_command();
    }
    if (rcpts_.empty()) {
        reply(554, "5.5.1", "No valid recipients");
        co_return bad_command();
    }
    reply(354, "", "End data with <CR><LF>.<CR><LF>");
    set_deadline(cfg_.submission.data_timeout);
    smtp::DataDecoder decoder(cfg_.submission.max_message_size);
    // Our Received: header is written first (as Postfix's smtpd does at DATA), so the body is
    // received right behind it instead of being copied behind it afterwards.
    const std::string queue_id = common::new_queue_id();
    {
        ReceivedInfo ri;
        ri.helo = helo_.value_or("");
        ri.client_address = ip_;
        ri.by_host = cfg_.server.hostname;
        ri.queue_id = queue_id;
        ri.esmtp = esmtp_;
        ri.tls = tls_;
        ri.authenticated = !auth_user_.empty();
        if (local_) {
            ri.local = true;
            ri.local_uid = local_->uid;
            ri.local_user = local_->user;
        }
        ri.smtputf8 = mail_params_.smtputf8;
        if (tls_) {
            auto f = tls::session_facts(stream_.native_handle());
            ri.tls_protocol = f.protocol;
            ri.tls_cipher = f.cipher;
            ri.tls_bits = f.bits;
        }
        if (rcpts_.size() == 1) ri.single_recipient = rcpts_[0].address;
        ri.when = std::chrono::system_clock::now();
        decoder.set_prefix(received_header(ri));
    }
    {
        std::size_t used = decoder.feed(rbuf_);
        rbuf_.erase(0, used);
    }
    if (!decoder.done()) {
        // The rest of the message goes from the socket's read straight into the decoder; only
        // what follows the end of data (pipelined commands) is kept in rbuf_.
        std::vector<char> chunk(16384);
        while (!decoder.done()) {
            const std::size_t n = co_await read_into(chunk.data(), chunk.size());
            if (n == 0) {
                if (timed_out_) reply(421, "4.4.2", cfg_.server.hostname + " Error: timeout exceeded during DATA");
                co_return false;
            }
            const std::size_t used = decoder.feed(std::string_view(chunk.data(), n));
            if (used < n) rbuf_.append(chunk.data() + used, n - used);
        }
    }
    auto finish = [this](int code, std::string_view enh, std::string_view text) {
        reply(code, enh, text);
        reset_transaction();
    };
    if (decoder.too_large()) {
        count_rejection("message_too_big");
        finish(552, "5.3.4",
               "Message too big (the limit is " + std::to_string(cfg_.submission.max_message_size) + " octets)");
        co_return true;
    }
    if (decoder.bare_lf() || decoder.bare_cr()) {
        count_rejection("malformed_message");
        finish(550, "5.6.0", "Message contains a bare CR or LF; lines must end with CRLF");
        co_return true;
    }
    if (decoder.nul()) {
        count_rejection("malformed_message");
        finish(550, "5.6.0", "Message contains NUL octets");
        co_return true;
    }
    if (decoder.long_line()) {
        count_rejection("malformed_message");
        finish(550, "5.6.0", "Message has a line longer than 998 octets (RFC 5322 2.1.1)");
        co_return true;
    }
    // RFC 5321 6.3 loop detection, as Postfix's hopcount_limit: our own Received: counts too.
    std::string message_text = decoder.take_body();
    if (const std::size_t hops = count_received(message_text); hops > cfg_.submission.max_hops) {
        spdlog::warn("{}: message from <{}> refused: {} Received: fields (max_hops {})", ip_,
                     log_escape(sender_.to_string()), hops, cfg_.submission.max_hops);
        count_rejection("too_many_hops");
        finish(554, "5.4.6",
               "Too many hops (" + std::to_string(hops) + " Received: header fields, the limit is " +
                   std::to_string(cfg_.submission.max_hops) + ")");
        co_return true;
    }
    if (cfg_.submission.sender_login_match && !check_from_header(message_text)) {
        reset_transaction();
        co_return true;
    }
    if (decoder.eight_bit() && mail_params_.body == smtp::Body::unspecified && !mail_params_.smtputf8) {
        // RFC 6152 3: 8-bit data needs BODY=8BITMIME; accept it as 8-bit rather than corrupt it, as
        // deployed servers do, and record it so delivery can check the next hop.
        mail_params_.body = smtp::Body::eight_bit_mime;
    }

    store::StoredMessage msg;
    auto& env = msg.envelope;
    env.id = queue_id;
    env.sender = sender_.to_string();
    env.recipients = rcpts_;
    env.body_type = body_type(mail_params_.body);
    env.smtputf8 = mail_params_.smtputf8;
    env.requiretls = mail_params_.requiretls;
    env.ret = dsn_ret(mail_params_.ret);
    env.envid = mail_params_.envid;
    // A local user is no account: "local:NAME" finds no account's rights (TLS-Required: No, modes).
    env.auth_user = local_ ? "local:" + local_->user : auth_user_;
    env.client_address = ip_;
    env.client_helo = helo_.value_or("");
    env.sender_mode = auth_mode_.empty() ? std::string(config::to_string(cfg_.policy.default_mode)) : auth_mode_;
    env.received_at = store::Clock::now();
    for (auto& r : env.recipients) r.next_attempt = env.received_at;

    msg.body = std::move(message_text);
    env.size = msg.body.size();

    const std::string id = env.id;
    const std::size_t nrcpt = env.recipients.size();
    const std::string from = env.sender;
    auto committed = co_await submit_durably(srv_->store.queue(), std::move(msg));
    if (!committed) {
        spdlog::error("{}: queue commit failed for {}: {}", ip_, id, log_escape(committed.error().message()));
        if (committed.error() == common::Errc::storage_full) {
            finish(452, "4.3.1", "Insufficient system storage, try again later");  // RFC 3463 4.3.1
        } else {
            finish(451, "4.3.0", "Temporary local problem: the message could not be stored, try again later");
        }
        co_return true;
    }
    if (local_) {
        spdlog::info("local: queued {} from=<{}> nrcpt={} uid={} user={}", id, log_escape(from), nrcpt, local_->uid,
                     log_escape(local_->user));
    } else {
        spdlog::info("{}: queued {} from=<{}> nrcpt={} user={} tls={}", ip_, id, log_escape(from), nrcpt,
                     auth_user_.empty() ? "-" : log_escape(auth_user_), tls_ ? "yes" : "no");
    }
    count_queued();
    junk_commands_ = 0;  // a trusted client that sends mail is not idling
    if (srv_->on_queued) srv_->on_queued();
    finish(250, "2.0.0", "Ok: queued as " + id);
    co_return true;
}

}  // namespace mailward::server

namespace mailward::server {

// From: at the end of DATA (sender binding): every mailbox in every From: field must be allowed;
// a From: we cannot read is refused too. 550 5.7.1: RFC 5321 lists 550, not 553, after DATA.
bool Session::check_from_header(const std::string& message) {
    auto from = from_addresses(message);
    const auto allowed = allowed_senders();
    const std::string who = local_               ? "local user " + local_->user
                            : auth_user_.empty() ? std::string("this client")
                                                 : "user " + auth_user_;
    if (from.malformed) {
        spdlog::warn("{}: message from <{}> refused: unreadable From: header", ip_, log_escape(sender_.to_string()));
        count_rejection("from_unreadable");
        reply(550, "5.7.1", "From: header rejected: cannot read its address");
        return false;
    }
    for (const auto& a : from.addresses) {
        if (!config::sender_allowed(allowed, a)) {
            spdlog::warn("{}: message refused: From: <{}> not allowed for {}", ip_, log_escape(a), log_escape(who));
            count_rejection("from_not_owned");
            reply(550, "5.7.1", "<" + a + ">: From: header address rejected: not owned by " + who);
            return false;
        }
    }
    return true;
}

}  // namespace mailward::server
