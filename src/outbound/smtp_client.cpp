// The outbound SMTP client: see smtp_client.hpp for the RFCs. One object per connection, used by
// one coroutine at a time (the engine's strand). Every network step has its own deadline: a timer
// that cancels the socket, so TLS reads are cut as well as plain ones. Trusts nothing the peer
// sends: replies are size-limited and parsed strictly; bytes after the STARTTLS 220 end the session.
#include "outbound/smtp_client.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <openssl/err.h>

#include "common/metrics.hpp"
#include "smtp/command.hpp"
#include "smtp/data_encode.hpp"
#include "smtp/sasl.hpp"

namespace mailward::outbound {
namespace asio = boost::asio;
using asio::as_tuple;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kMaxReplyBytes = 64 * 1024;
constexpr std::size_t kDataChunk = 64 * 1024;
constexpr auto kQuitTimeout = std::chrono::seconds(5);

struct Extensions {
    bool pipelining = false, eight_bit = false, smtputf8 = false, dsn = false, requiretls = false, starttls = false;
    bool auth_plain = false, auth_login = false;  // AUTH mechanisms offered (RFC 4954)
    std::optional<std::uint64_t> size;            // 0 = announced without a limit
};

std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

Extensions parse_ehlo(const std::vector<std::string>& lines) {
    Extensions e;
    for (std::size_t i = 1; i < lines.size(); ++i) {  // line 0 is the greeting text
        std::string l = upper(lines[i]);
        std::string kw = l.substr(0, l.find(' '));
        if (kw == "PIPELINING") e.pipelining = true;
        else if (kw == "8BITMIME") e.eight_bit = true;
        else if (kw == "SMTPUTF8") e.smtputf8 = true;
        else if (kw == "DSN") e.dsn = true;
        else if (kw == "REQUIRETLS") e.requiretls = true;
        else if (kw == "STARTTLS") e.starttls = true;
        else if (kw == "AUTH" || kw.rfind("AUTH=", 0) == 0) {
            // "AUTH PLAIN LOGIN" (RFC 4954) or the pre-standard "AUTH=PLAIN LOGIN".
            const std::string mechs = " " + l.substr(5) + " ";
            e.auth_plain = e.auth_plain || mechs.find(" PLAIN ") != std::string::npos;
            e.auth_login = e.auth_login || mechs.find(" LOGIN ") != std::string::npos;
        } else if (kw == "SIZE") {
            std::uint64_t n = 0;
            auto sp = l.find(' ');
            if (sp != std::string::npos) {
                try {
                    n = std::stoull(l.substr(sp + 1));
                } catch (...) {
                    n = 0;
                }
            }
            e.size = n;
        }
    }
    return e;
}

std::string ssl_error_text(const boost::system::error_code& ec) {
    std::string s = ec.message();
    if (ec.category() == asio::error::get_ssl_category()) {
        char buf[256];
        ERR_error_string_n(static_cast<unsigned long>(ec.value()), buf, sizeof buf);
        s = buf;
    }
    return s;
}

class Client final : public SmtpClient {
  public:
    Client(asio::any_io_executor ex, Target t, tls::ClientContext ctx, ClientTimeouts to)
        : tls_ctx_(std::move(ctx)), stream_(ex, *tls_ctx_.ctx), timer_(ex), target_(std::move(t)), to_(to) {}

    ~Client() override {
        boost::system::error_code ec;
        ++*generation_;  // a timer handler already queued must not touch this object
        timer_.cancel();
        stream_.next_layer().close(ec);
    }

    // Connects and completes greeting, EHLO and STARTTLS as the level demands, then AUTH when the
    // target has credentials (only inside TLS: a session left in plaintext ends at AUTH).
    asio::awaitable<std::optional<SessionError>> open(bool skip_starttls);

    asio::awaitable<TransactionResult> send(const store::Envelope& env, std::vector<std::size_t> recipients,
                                            const std::string& body) override;
    asio::awaitable<void> quit() override;
    const tls::PeerFacts& tls_facts() const override { return facts_; }
    const Target& target() const override { return target_; }
    const std::vector<std::string>& ehlo_lines() const override { return ehlo_; }
    bool starttls_offered() const override { return starttls_offered_; }
    bool offers_dsn() const override { return ext_.dsn; }
    std::string local_address() const override { return local_; }

  private:
    void arm(std::chrono::milliseconds d);
    void disarm() {
        ++*generation_;
        timer_.cancel();
    }
    asio::awaitable<bool> reset();
    asio::awaitable<bool> write(std::string_view data, std::chrono::milliseconds d);
    asio::awaitable<std::optional<smtp::Reply>> read_reply(std::chrono::milliseconds d);
    asio::awaitable<std::optional<SessionError>> ehlo(Stage stage);
    asio::awaitable<std::optional<SessionError>> open_session(bool skip_starttls);
    asio::awaitable<std::optional<SessionError>> authenticate();
    asio::awaitable<std::optional<smtp::Reply>> command_reply(std::string line);  // nullopt: I/O failed
    asio::awaitable<void> end_empty_data();
    std::string mail_command(const store::Envelope& env, std::size_t size) const;
    std::string rcpt_command(const store::Recipient& r) const;
    std::optional<SessionError> precheck(const store::Envelope& env, std::size_t size) const;
    bool usable() const { return !broken_ && !no_reuse_; }
    SessionError reply_error(Stage s, smtp::Reply r, std::string detail = "") const {
        SessionError e;
        e.stage = s;
        e.reply = std::move(r);
        e.detail = std::move(detail);
        if (tls_) e.tls = facts_;
        return e;
    }
    SessionError refused(Refusal r, std::string detail) const {
        SessionError e;
        e.stage = Stage::mail;
        e.refusal = r;
        e.detail = std::move(detail);
        if (tls_) e.tls = facts_;
        return e;
    }
    SessionError net_error(Stage s, std::string detail = "") const {
        SessionError e;
        e.stage = s;
        e.ec = timed_out_ ? make_error_code(asio::error::timed_out) : last_ec_;
        e.detail = detail.empty() ? (timed_out_ ? "timed out" : ssl_error_text(last_ec_)) : detail;
        if (tls_) e.tls = facts_;
        return e;
    }
    SessionError net_error(Stage s, TlsFault f) const {
        SessionError e = net_error(s);
        e.tls_fault = f;
        return e;
    }

    tls::ClientContext tls_ctx_;
    asio::ssl::stream<tcp::socket> stream_;
    asio::steady_timer timer_;
    // Bumped by disarm() and the destructor: a deadline handler that fires after its operation
    // finished (already queued when cancel() came) sees a newer value and does nothing.
    std::shared_ptr<std::uint64_t> generation_ = std::make_shared<std::uint64_t>(0);
    Target target_;
    ClientTimeouts to_;
    bool tls_ = false;
    bool timed_out_ = false;
    bool broken_ = false;    // the connection cannot carry another command
    bool no_reuse_ = false;  // it could, but should not (RSET refused)
    boost::system::error_code last_ec_;
    std::string rbuf_;
    std::vector<std::string> ehlo_;
    Extensions ext_;
    bool starttls_offered_ = false;
    std::string local_;  // our address of the connection (TLS-RPT sending-mta-ip)
    tls::PeerFacts facts_;
};

void Client::arm(std::chrono::milliseconds d) {
    timed_out_ = false;
    const std::uint64_t mine = ++*generation_;
    timer_.expires_after(d);
    timer_.async_wait([this, token = generation_, mine](const boost::system::error_code& ec) {
        // Cancelled, or the operation finished (or the client is gone): nothing to cut.
        if (ec || *token != mine) return;
        timed_out_ = true;
        boost::system::error_code ignored;
        stream_.next_layer().cancel(ignored);
    });
}

asio::awaitable<bool> Client::write(std::string_view data, std::chrono::milliseconds d) {
    if (broken_) co_return false;
    arm(d);
    boost::system::error_code ec;
    if (tls_) {
        std::tie(ec, std::ignore) = co_await asio::async_write(stream_, asio::buffer(data), as_tuple(use_awaitable));
    } else {
        std::tie(ec, std::ignore) =
            co_await asio::async_write(stream_.next_layer(), asio::buffer(data), as_tuple(use_awaitable));
    }
    disarm();
    if (ec) {
        last_ec_ = ec;
        broken_ = true;
        co_return false;
    }
    co_return true;
}

asio::awaitable<std::optional<smtp::Reply>> Client::read_reply(std::chrono::milliseconds d) {
    if (broken_) co_return std::nullopt;
    smtp::ReplyParser parser;
    std::size_t taken = 0;
    arm(d);
    for (;;) {
        auto nl = rbuf_.find('\n');
        if (nl != std::string::npos) {
            std::string line = rbuf_.substr(0, nl);
            rbuf_.erase(0, nl + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            taken += nl + 1;
            auto st = parser.feed(line);
            if (st == smtp::ReplyParser::Status::done) {
                disarm();
                smtp::Reply r = parser.take();
                // 421: the server is closing the channel (RFC 5321 3.8); nothing more is sent.
                if (r.code == 421) {
                    broken_ = true;
                    last_ec_ = make_error_code(asio::error::connection_aborted);
                }
                co_return r;
            }
            if (st == smtp::ReplyParser::Status::error || taken > kMaxReplyBytes) {
                disarm();
                last_ec_ = make_error_code(asio::error::invalid_argument);
                broken_ = true;
                co_return std::nullopt;
            }
            continue;
        }
        if (rbuf_.size() > kMaxReplyBytes) {
            disarm();
            last_ec_ = make_error_code(asio::error::message_size);
            broken_ = true;
            co_return std::nullopt;
        }
        char buf[8192];
        boost::system::error_code ec;
        std::size_t n = 0;
        if (tls_) {
            std::tie(ec, n) = co_await stream_.async_read_some(asio::buffer(buf), as_tuple(use_awaitable));
        } else {
            std::tie(ec, n) = co_await stream_.next_layer().async_read_some(asio::buffer(buf), as_tuple(use_awaitable));
        }
        if (ec) {
            disarm();
            last_ec_ = ec;
            broken_ = true;
            co_return std::nullopt;
        }
        rbuf_.append(buf, n);
    }
}

asio::awaitable<std::optional<SessionError>> Client::ehlo(Stage stage) {
    const std::string ehlo_cmd = "EHLO " + target_.helo_name + "\r\n";
    if (!co_await write(ehlo_cmd, to_.command)) co_return net_error(stage);
    std::optional<smtp::Reply> r = co_await read_reply(to_.command);
    if (!r) co_return net_error(stage);
    if (r->code == 250) {
        ehlo_ = r->lines;
        ext_ = parse_ehlo(r->lines);
        co_return std::nullopt;
    }
    // RFC 5321 3.2 / 4.1.4: a server that refuses EHLO permanently (500, 502, 554...) may still
    // know HELO (and no extensions). A 4xx (421: closing) is an answer for the session.
    if (!r->permanent() || broken_) co_return reply_error(stage, *r);
    const std::string helo_cmd = "HELO " + target_.helo_name + "\r\n";
    if (!co_await write(helo_cmd, to_.command)) co_return net_error(stage);
    std::optional<smtp::Reply> h = co_await read_reply(to_.command);
    if (!h) co_return net_error(stage);
    if (h->code != 250) co_return reply_error(stage, *h);
    ehlo_.clear();
    ext_ = Extensions{};
    co_return std::nullopt;
}

asio::awaitable<std::optional<SessionError>> Client::open(bool skip_starttls) {
    auto e = co_await open_session(skip_starttls);
    // A target with credentials whose session stayed in plaintext (a level below encrypt and no
    // STARTTLS, or a failed handshake at may): AUTH refuses it rather than the message going on
    // unauthenticated; the password is never sent. (serve's routes with auth_user are at verify.)
    if (!e && !target_.auth_user.empty() && !tls_) e = co_await authenticate();
    co_return e;
}

asio::awaitable<std::optional<SessionError>> Client::open_session(bool skip_starttls) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(target_.address, ec);
    if (ec) {
        last_ec_ = ec;
        broken_ = true;
        co_return net_error(Stage::connect, "bad address " + target_.address);
    }
    const tcp::endpoint endpoint(addr, target_.port);
    if (!target_.bind_address.empty()) {
        // [delivery] bind_address(6) or the route's: connect from that local address.
        auto local = asio::ip::make_address(target_.bind_address, ec);
        if (!ec) stream_.next_layer().open(endpoint.protocol(), ec);
        if (!ec) stream_.next_layer().bind(tcp::endpoint(local, 0), ec);
        if (ec) {
            last_ec_ = ec;
            broken_ = true;
            co_return net_error(Stage::connect, "cannot bind to local address " + target_.bind_address);
        }
    }
    arm(to_.connect);
    std::tie(ec) = co_await stream_.next_layer().async_connect(endpoint, as_tuple(use_awaitable));
    disarm();
    if (ec) {
        last_ec_ = ec;
        broken_ = true;
        co_return net_error(Stage::connect);
    }
    if (auto local = stream_.next_layer().local_endpoint(ec); !ec) local_ = local.address().to_string();
    // Commands and the end of DATA are small writes that wait for a reply: without TCP_NODELAY,
    // Nagle holds the last segment until the peer's delayed ACK (40 ms on Linux) - per message.
    stream_.next_layer().set_option(tcp::no_delay(true), ec);
    std::optional<smtp::Reply> greeting = co_await read_reply(to_.greeting);
    if (!greeting) co_return net_error(Stage::greeting);
    if (greeting->code != 220) co_return reply_error(Stage::greeting, *greeting);
    if (auto e = co_await ehlo(Stage::ehlo)) co_return e;
    starttls_offered_ = ext_.starttls;

    const bool forced = target_.level >= tls::Level::encrypt;
    if (target_.level == tls::Level::none || skip_starttls) co_return std::nullopt;
    if (!ext_.starttls) {
        if (!forced) co_return std::nullopt;  // may: plaintext is allowed
        SessionError e;
        e.stage = Stage::tls_policy;
        e.tls_fault = TlsFault::starttls_missing;
        e.detail = "STARTTLS not offered by " + target_.mx_host + " [" + target_.address + "]";
        for (const auto& l : ehlo_) e.raw += "250 " + l + "\n";
        co_return e;
    }
    // TLS is set up before it is asked for: a level that cannot be met whatever the peer does (no
    // usable TLSA record at dane) ends the session here, with a plaintext QUIT.
    if (!tls::prepare_client(stream_.native_handle(), target_.level, target_.mx_host, target_.tlsa)) {
        SessionError e;
        e.stage = Stage::tls_policy;
        e.tls_fault = TlsFault::below_level;
        e.detail = "no usable TLSA record for " + target_.mx_host;
        co_return e;
    }
    if (!co_await write("STARTTLS\r\n", to_.command)) co_return net_error(Stage::starttls, TlsFault::no_session);
    std::optional<smtp::Reply> st = co_await read_reply(to_.command);
    if (!st) co_return net_error(Stage::starttls, TlsFault::no_session);
    if (st->code != 220) {
        // may: go on in plaintext on this connection (RFC 3207 4.1), with the first EHLO's
        // extensions. encrypt and above: the session ends here.
        if (!forced && !broken_) co_return std::nullopt;
        SessionError e = reply_error(Stage::starttls, *st);
        e.tls_fault = TlsFault::starttls_refused;
        co_return e;
    }
    if (!rbuf_.empty()) {
        // Bytes after the 220 and before the handshake could only come from an attacker (the
        // STARTTLS command injection of CVE-2011-0411, the other way round).
        broken_ = true;
        SessionError e;
        e.stage = Stage::starttls;
        e.tls_fault = TlsFault::no_session;
        e.detail = "the server sent data after its STARTTLS reply (possible injection)";
        co_return e;
    }
    arm(to_.command);
    const auto handshake_start = std::chrono::steady_clock::now();
    std::tie(ec) = co_await stream_.async_handshake(asio::ssl::stream_base::client, as_tuple(use_awaitable));
    disarm();
    common::metrics::observe("mailward_tls_handshake_seconds",
                             "Outbound STARTTLS handshakes (delivery and probes), by result.",
                             {{"result", ec ? "failed" : "ok"}},
                             std::chrono::duration<double>(std::chrono::steady_clock::now() - handshake_start).count());
    if (ec) {
        last_ec_ = ec;
        broken_ = true;
        co_return net_error(Stage::tls_handshake, TlsFault::no_session);
    }
    tls_ = true;
    facts_ = tls::collect_facts(stream_.native_handle());
    std::string why;
    if (!tls::meets(target_.level, facts_, why)) {
        SessionError e;
        e.stage = Stage::tls_policy;
        e.tls_fault = TlsFault::below_level;
        e.detail = why;
        e.tls = facts_;
        co_return e;
    }
    if (!target_.known_spki.empty() &&
        std::find(target_.known_spki.begin(), target_.known_spki.end(), facts_.spki_sha256) ==
            target_.known_spki.end() &&
        !(facts_.chain_valid && facts_.name_matched)) {
        SessionError e;
        e.stage = Stage::tls_policy;
        e.tls_fault = TlsFault::certificate_changed;
        e.detail = "certificate changed: " + target_.mx_host + " [" + target_.address + "] presents key " +
                   facts_.spki_sha256 + ", not the one learned, and no valid chain naming the host explains it";
        e.tls = facts_;
        for (const auto& c : facts_.chain) e.raw += "subject=" + c.subject + " issuer=" + c.issuer + "\n";
        e.raw += "spki_sha256=" + facts_.spki_sha256 + " verify_error=" + facts_.verify_error;
        co_return e;
    }
    if (auto e = co_await ehlo(Stage::ehlo)) co_return e;  // RFC 3207 4.2: start over after TLS
    if (!target_.auth_user.empty()) {
        auto refused = co_await authenticate();
        if (refused) co_return refused;
    }
    co_return std::nullopt;
}

asio::awaitable<std::optional<smtp::Reply>> Client::command_reply(std::string line) {
    if (!co_await write(line, to_.command)) co_return std::nullopt;
    // Named: written as `co_return co_await read_reply(...)` this coroutine was never resumed
    // (g++ 12; the connection closed and the delivery hung in test_routes).
    auto reply = co_await read_reply(to_.command);
    co_return reply;
}

// RFC 4954: PLAIN (RFC 4616, one round) when offered, else LOGIN; only here, after a TLS session
// that met the level, so the password never crosses the wire in the clear or to an unchecked peer.
asio::awaitable<std::optional<SessionError>> Client::authenticate() {
    if (!tls_) {
        SessionError e;
        e.stage = Stage::auth;
        e.detail = "AUTH refused: no TLS session with " + target_.mx_host + " (credentials only inside TLS)";
        co_return e;
    }
    if (!ext_.auth_plain && !ext_.auth_login) {
        SessionError e;
        e.stage = Stage::auth;
        e.detail = target_.mx_host + " offers neither AUTH PLAIN nor AUTH LOGIN";
        for (const auto& l : ehlo_) e.raw += "250 " + l + "\n";
        co_return e;
    }
    std::optional<smtp::Reply> r;
    if (ext_.auth_plain) {
        std::string creds;
        creds.push_back('\0');
        creds += target_.auth_user;
        creds.push_back('\0');
        creds += target_.auth_password;
        // Named: g++ 12 may free a co_await's temporaries early.
        const std::string line = "AUTH PLAIN " + smtp::base64_encode(creds) + "\r\n";
        r = co_await command_reply(line);
    } else {
        const std::string login = "AUTH LOGIN\r\n";
        const std::string user = smtp::base64_encode(target_.auth_user) + "\r\n";
        const std::string pass = smtp::base64_encode(target_.auth_password) + "\r\n";
        r = co_await command_reply(login);
        if (r && r->code == 334) r = co_await command_reply(user);
        if (r && r->code == 334) r = co_await command_reply(pass);
    }
    if (!r) co_return net_error(Stage::auth);
    if (r->code != 235) {
        no_reuse_ = true;
        co_return reply_error(Stage::auth, *r, "AUTH as " + target_.auth_user + " refused");
    }
    co_return std::nullopt;
}

asio::awaitable<bool> Client::reset() {
    if (!co_await write("RSET\r\n", to_.command)) co_return false;
    std::optional<smtp::Reply> r = co_await read_reply(to_.command);
    if (r && r->code == 250) co_return true;
    no_reuse_ = true;  // a server that refuses RSET gets no further transaction on this connection
    co_return false;
}

asio::awaitable<void> Client::end_empty_data() {
    // Only after a 354 that should not have come (no recipient accepted): the message is ended
    // at once, empty; with no recipient the server has nobody to deliver it to.
    if (!co_await write(".\r\n", to_.data_block)) co_return;
    std::optional<smtp::Reply> r = co_await read_reply(to_.data_done);
    (void)r;
}

std::string Client::mail_command(const store::Envelope& env, std::size_t size) const {
    std::string mail = "MAIL FROM:<" + env.sender + ">";
    if (ext_.size) mail += " SIZE=" + std::to_string(size);
    if (env.body_type != store::BodyType::seven_bit) mail += " BODY=8BITMIME";
    if (env.smtputf8) mail += " SMTPUTF8";
    if (ext_.dsn && env.ret != store::DsnRet::unspecified)
        mail += env.ret == store::DsnRet::full ? " RET=FULL" : " RET=HDRS";
    if (ext_.dsn && !env.envid.empty()) mail += " ENVID=" + smtp::xtext_encode(env.envid);
    if (env.requiretls) mail += " REQUIRETLS";
    mail += "\r\n";
    return mail;
}

std::string Client::rcpt_command(const store::Recipient& r) const {
    std::string l = "RCPT TO:<" + r.address + ">";
    if (ext_.dsn && r.notify != 0) {
        if (r.notify & store::notify_never) {
            l += " NOTIFY=NEVER";
        } else {
            std::string n;
            if (r.notify & store::notify_success) n += "SUCCESS,";
            if (r.notify & store::notify_failure) n += "FAILURE,";
            if (r.notify & store::notify_delay) n += "DELAY,";
            if (!n.empty()) l += " NOTIFY=" + n.substr(0, n.size() - 1);
        }
    }
    if (ext_.dsn && !r.orcpt.empty()) {
        auto semi = r.orcpt.find(';');
        if (semi != std::string::npos) {
            l += " ORCPT=" + r.orcpt.substr(0, semi) + ";" + smtp::xtext_encode(r.orcpt.substr(semi + 1));
        }
    }
    l += "\r\n";
    return l;
}

std::optional<SessionError> Client::precheck(const store::Envelope& env, std::size_t size) const {
    // What the peer announced rules out the transaction: refused here, nothing sent.
    if (ext_.size && *ext_.size > 0 && size > *ext_.size) {
        return refused(Refusal::size_exceeded, "the message is " + std::to_string(size) + " octets, " +
                                                   target_.mx_host + " accepts at most " + std::to_string(*ext_.size));
    }
    if (env.body_type != store::BodyType::seven_bit && !ext_.eight_bit) {
        // No conversion to 7 bit (RFC 6152 3 allows it; not done yet): the message is refused.
        return refused(Refusal::no_8bitmime, "8-bit message and no 8BITMIME at " + target_.mx_host);
    }
    if (env.smtputf8 && !ext_.smtputf8) {
        return refused(Refusal::no_smtputf8, "internationalized addresses and no SMTPUTF8 at " + target_.mx_host);
    }
    if (env.requiretls && (!ext_.requiretls || !tls_)) {
        // RFC 8689 4: REQUIRETLS only over TLS, and only to a next hop that offers it.
        const char* missing = !tls_ && !ext_.requiretls ? "no TLS and no REQUIRETLS"
                              : !tls_                   ? "no TLS"
                                                        : "no REQUIRETLS";
        return refused(Refusal::no_requiretls, std::string("RFC 8689: ") + missing + " at " + target_.mx_host);
    }
    return std::nullopt;
}

asio::awaitable<TransactionResult> Client::send(const store::Envelope& env, std::vector<std::size_t> rcpts,
                                                const std::string& body) {
    TransactionResult res;
    auto fail = [&res, this](SessionError e) {
        res.error = std::move(e);
        res.connection_usable = usable();
    };
    if (!usable()) {
        if (!last_ec_) last_ec_ = make_error_code(asio::error::not_connected);
        fail(net_error(Stage::mail, "the connection is no longer usable"));
        co_return res;
    }
    // The DATA octets, decided before MAIL: a body proved clean by one scan (only CRLF line ends,
    // no NUL) and without a line that starts with a dot is sent as it is, followed by the end
    // marker; any other gets a copy, dot-stuffed and with every bare CR and bare LF made CRLF, so
    // nothing on the wire can look like an end of data to any receiver (SMTP smuggling). A NUL is
    // refused before MAIL.
    const smtp::BodyScan scan = smtp::scan_body(body);
    if (scan.nul) {
        fail(refused(Refusal::nul_octet, "the message holds a NUL octet, which is not sent (RFC 5321 2.3.8)"));
        co_return res;
    }
    std::string wire;
    std::string_view out = body;
    std::string_view tail;
    if (!scan.crlf_only || scan.dot_line) {
        smtp::encode_data(body, wire);
        out = wire;
    } else {
        tail = scan.ends_crlf ? ".\r\n" : "\r\n.\r\n";
    }
    const std::size_t size = scan.crlf_only ? body.size() : wire.size();
    if (auto e = precheck(env, size)) {
        fail(std::move(*e));
        co_return res;
    }
    const std::string mail = mail_command(env, size);
    std::vector<std::string> rcpt_lines;
    for (auto i : rcpts) rcpt_lines.push_back(rcpt_command(env.recipients[i]));

    // MAIL, RCPTs and DATA: one write with PIPELINING (RFC 2920 3.1), else one at a time.
    std::optional<smtp::Reply> mail_reply;
    std::vector<smtp::Reply> rcpt_replies;
    std::optional<smtp::Reply> data_reply;
    if (ext_.pipelining) {
        std::string batch = mail;
        for (const auto& l : rcpt_lines) batch += l;
        batch += "DATA\r\n";
        if (!co_await write(batch, to_.command)) {
            fail(net_error(Stage::mail));
            co_return res;
        }
        mail_reply = co_await read_reply(to_.command);
        for (std::size_t i = 0; mail_reply && i < rcpt_lines.size(); ++i) {
            std::optional<smtp::Reply> r = co_await read_reply(to_.command);
            if (!r) break;
            rcpt_replies.push_back(std::move(*r));
        }
        if (mail_reply && rcpt_replies.size() == rcpt_lines.size()) data_reply = co_await read_reply(to_.data_init);
    } else {
        if (!co_await write(mail, to_.command)) {
            fail(net_error(Stage::mail));
            co_return res;
        }
        mail_reply = co_await read_reply(to_.command);
        if (mail_reply && mail_reply->positive()) {
            for (const auto& l : rcpt_lines) {
                if (!co_await write(l, to_.command)) break;
                std::optional<smtp::Reply> r = co_await read_reply(to_.command);
                if (!r) break;
                rcpt_replies.push_back(std::move(*r));
            }
        }
    }
    if (!mail_reply) {
        fail(net_error(Stage::mail));
        co_return res;
    }
    if (!mail_reply->positive()) {
        // Pipelined, the RCPTs and DATA were refused with it (RFC 2920 3.1); no transaction is open.
        if (data_reply && data_reply->code == 354) co_await end_empty_data();
        fail(reply_error(Stage::mail, *mail_reply));
        co_return res;
    }
    if (rcpt_replies.size() != rcpt_lines.size()) {
        fail(net_error(Stage::rcpt));
        co_return res;
    }
    if (ext_.pipelining && !data_reply) {
        fail(net_error(Stage::data));
        co_return res;
    }
    std::vector<std::size_t> accepted;  // positions in rcpts
    for (std::size_t k = 0; k < rcpts.size(); ++k) {
        if (rcpt_replies[k].positive()) {
            accepted.push_back(k);
            continue;
        }
        RecipientResult rr;
        rr.index = rcpts[k];
        rr.reply = rcpt_replies[k];
        res.recipients.push_back(std::move(rr));
    }
    if (accepted.empty()) {
        // No recipient, no DATA (RFC 5321 3.3; RFC 2920 3.1 for the pipelined one, which the
        // server refuses with 503/554, or, if it answered 354, is ended empty). Then RSET.
        if (data_reply && data_reply->code == 354) co_await end_empty_data();
        co_await reset();
        res.connection_usable = usable();
        co_return res;
    }
    if (!ext_.pipelining) {
        if (!co_await write("DATA\r\n", to_.command)) {
            fail(net_error(Stage::data));
            co_return res;
        }
        data_reply = co_await read_reply(to_.data_init);
        if (!data_reply) {
            fail(net_error(Stage::data));
            co_return res;
        }
    }
    if (data_reply->code != 354) {
        co_await reset();  // MAIL and RCPTs were accepted: the transaction is still open
        fail(reply_error(Stage::data, *data_reply));
        co_return res;
    }
    for (std::size_t off = 0; off < out.size(); off += kDataChunk) {
        const std::string_view chunk = out.substr(off, kDataChunk);
        if (!co_await write(chunk, to_.data_block)) {
            fail(net_error(Stage::data));
            co_return res;
        }
    }
    if (!tail.empty() && !co_await write(tail, to_.data_block)) {
        fail(net_error(Stage::data));
        co_return res;
    }
    std::optional<smtp::Reply> final_reply = co_await read_reply(to_.data_done);
    if (!final_reply) {
        fail(net_error(Stage::data_done));
        co_return res;
    }
    if (!final_reply->positive()) {
        fail(reply_error(Stage::data_done, *final_reply));
        co_return res;
    }
    for (auto k : accepted) {
        RecipientResult rr;
        rr.index = rcpts[k];
        rr.reply = *final_reply;
        rr.accepted = true;
        res.recipients.push_back(std::move(rr));
    }
    co_return res;
}

asio::awaitable<void> Client::quit() {
    if (!broken_ && co_await write("QUIT\r\n", kQuitTimeout)) {
        std::optional<smtp::Reply> bye = co_await read_reply(kQuitTimeout);  // 221, best effort
        (void)bye;
    }
    if (tls_ && !broken_) {
        arm(kQuitTimeout);
        boost::system::error_code ec;
        std::tie(ec) = co_await stream_.async_shutdown(as_tuple(use_awaitable));
        disarm();
    }
    boost::system::error_code ec;
    stream_.next_layer().close(ec);
    broken_ = true;
}

}  // namespace

asio::awaitable<std::pair<std::unique_ptr<SmtpClient>, std::optional<SessionError>>> SmtpClient::connect(
    asio::any_io_executor ex, Target target, tls::ClientContext tls, ClientTimeouts timeouts) {
    auto c = std::make_unique<Client>(ex, target, tls, timeouts);
    auto err = co_await c->open(false);
    if (err && target.level == tls::Level::may && err->stage == Stage::tls_handshake) {
        // Opportunistic: a peer whose TLS is broken still gets the message, in plaintext, as it
        // would from any MTA (the ratchet of the policy engine decides when this is not allowed).
        co_await c->quit();
        c = std::make_unique<Client>(ex, target, tls, timeouts);
        err = co_await c->open(true);
    }
    if (err) {
        err->local_address = c->local_address();
        co_await c->quit();
        co_return std::make_pair(std::unique_ptr<SmtpClient>(), err);
    }
    co_return std::make_pair(std::unique_ptr<SmtpClient>(std::move(c)), std::optional<SessionError>());
}

}  // namespace mailward::outbound
