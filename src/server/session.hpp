// Internal to src/server: the per-connection SMTP state machine of the submission server.
// RFC 5321 (commands, order, replies), RFC 3207 (STARTTLS; bytes pipelined after it are
// discarded, the CVE-2011-0411 class), RFC 4954 (AUTH only under TLS), RFC 2920 (replies are
// buffered and flushed only before the server would block), RFC 1870/6152/6531/3461/8689
// (parameters kept with the message). A message is acknowledged only after the store's commit.
// Abuse limits: junk commands before AUTH, a session lifetime, stress timeouts and eviction
// (server_impl.hpp), sender binding at MAIL and at the end of DATA, the hop count (RFC 5321 6.3).
// A session on the local socket (local_listener.cpp) is a LocalPeer instead of an address: no TLS, no AUTH.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "server/server_impl.hpp"
#include "smtp/command.hpp"
#include "smtp/reply.hpp"

namespace mailward::server {

class Session : public std::enable_shared_from_this<Session> {
  public:
    using Executor = asio::strand<asio::io_context::executor_type>;
    Session(std::shared_ptr<SubmissionServer::Impl> srv, SessionSocket socket, bool implicit_tls, std::string ip,
            std::string net, std::optional<LocalPeer> local = std::nullopt);
    ~Session();

    // For admission (any thread): the session's state as the eviction choice sees it.
    const std::string& net() const { return net_; }
    bool idle() const { return idle_.load(); }              // waiting for the client, not in DATA
    bool privileged() const { return privileged_.load(); }  // authenticated or trusted
    std::int64_t idle_since() const { return idle_since_.load(); }
    bool evicting() const { return evicting_.load(); }
    bool mark_evicting() { return !evicting_.exchange(true); }
    // Closes the session with 421 to make room for a newcomer from for_ip (posted to its strand).
    void evict(const std::string& for_ip);
    // Re-arms the watchdog (stress began: idle timeouts are shorter now).
    void wake();
    // The server drains (SIGTERM): between transactions the session closes now with 421 4.3.2;
    // in one, its next command after the transaction gets that (posted to its strand).
    void shut_down();
    void set_id(std::uint64_t id) { id_ = id; }

    static asio::awaitable<void> run(std::shared_ptr<Session> self);
    static asio::awaitable<void> watchdog(std::shared_ptr<Session> self);

  private:
    enum class ReadStatus { line, too_long, closed, timeout };
    enum class CloseReason { none, timeout, stress_timeout, session_time, evicted, shutdown };

    asio::awaitable<ReadStatus> read_line(std::string& line);
    asio::awaitable<bool> read_more();
    // One read of at most cap octets into buf (after flushing replies); 0 on error, EOF or timeout.
    asio::awaitable<std::size_t> read_into(char* buf, std::size_t cap);
    asio::awaitable<bool> flush();
    void reply(int code, std::string_view enhanced, std::string_view text);
    void reply(const smtp::Reply& r);
    void set_deadline(std::chrono::milliseconds d);
    std::chrono::steady_clock::time_point effective_deadline() const;
    // restart_clock false: idle again within the same wait (a line's next bytes), since unchanged.
    void set_idle(bool idle, bool restart_clock = true);
    std::string timeout_text() const;  // the 421 text for close_reason_
    bool junk_command();               // counts one before AUTH; false when the limit is reached (421 queued)
    std::vector<std::string> allowed_senders() const;
    bool check_from_header(const std::string& message);  // false: 550 5.7.1 queued

    // Returns false when the session must end.
    asio::awaitable<bool> handle(const smtp::Command& cmd);
    void on_ehlo(const smtp::Command& cmd, bool extended);
    asio::awaitable<bool> on_starttls();
    asio::awaitable<bool> on_auth(const smtp::Command& cmd);
    asio::awaitable<std::optional<std::string>> sasl_response(std::string prompt);
    void on_mail(const smtp::Command& cmd);
    void on_rcpt(const smtp::Command& cmd);
    asio::awaitable<bool> on_data();
    bool bad_command();  // counts; false when the limit is reached (421 queued)
    void reset_transaction();
    bool relay_allowed() const;
    smtp::ParseOptions parse_options() const;

    std::shared_ptr<SubmissionServer::Impl> srv_;
    // The configuration and TLS context current when the session started (a reload changes them
    // for later sessions only).
    std::shared_ptr<const config::Config> cfg_hold_;
    std::shared_ptr<asio::ssl::context> tls_hold_;
    const config::Config& cfg_;
    asio::ssl::stream<SessionSocket> stream_;
    asio::steady_timer timer_;
    std::chrono::steady_clock::time_point deadline_;
    bool implicit_tls_;
    bool tls_ = false;
    bool timed_out_ = false;
    bool closed_ = false;
    std::string ip_;
    std::string net_;  // the client network (server/client_net.hpp)
    std::uint64_t id_ = 0;
    std::vector<unsigned char> ip_bytes_;
    bool trusted_ = false;
    std::optional<LocalPeer> local_;  // a local program (sendmail) instead of a network client
    std::atomic<bool> idle_{false};
    std::atomic<bool> privileged_{false};
    std::atomic<bool> evicting_{false};
    std::atomic<std::int64_t> idle_since_{0};  // steady_clock ticks
    std::chrono::steady_clock::time_point session_end_;
    CloseReason close_reason_ = CloseReason::none;
    std::size_t junk_commands_ = 0;

    std::string rbuf_;  // received, not yet consumed
    std::string out_;   // replies not yet sent (pipelining)

    std::size_t bad_commands_ = 0;
    std::optional<std::string> helo_;
    bool esmtp_ = false;
    std::string auth_user_;
    std::string auth_mode_;                  // the user's sender mode, "" = default
    std::vector<std::string> auth_senders_;  // the user's sender patterns, [] = none listed

    // The transaction in progress.
    bool in_mail_ = false;
    smtp::Mailbox sender_;
    smtp::MailParams mail_params_;
    std::vector<store::Recipient> rcpts_;
};

}  // namespace mailward::server
