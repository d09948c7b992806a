// Internal to src/server: the per-connection SMTP state machine of the submission server.
// RFC 5321 (commands, order, replies), RFC 3207 (STARTTLS; bytes pipelined after it are
// discarded, the CVE-2011-0411 class), RFC 4954 (AUTH only under TLS), RFC 2920 (replies are
// buffered and flushed only before the server would block), RFC 1870/6152/6531/3461/8689
// (parameters kept with the message). A message is acknowledged only after the store's commit.
#pragma once

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
    Session(std::shared_ptr<SubmissionServer::Impl> srv, tcp::socket socket, bool implicit_tls, std::string ip);
    ~Session();

    static asio::awaitable<void> run(std::shared_ptr<Session> self);
    static asio::awaitable<void> watchdog(std::shared_ptr<Session> self);

private:
    enum class ReadStatus { line, too_long, closed, timeout };

    asio::awaitable<ReadStatus> read_line(std::string& line);
    asio::awaitable<bool> read_more();
    // One read of at most cap octets into buf (after flushing replies); 0 on error, EOF or timeout.
    asio::awaitable<std::size_t> read_into(char* buf, std::size_t cap);
    asio::awaitable<bool> flush();
    void reply(int code, std::string_view enhanced, std::string_view text);
    void reply(const smtp::Reply& r);
    void set_deadline(std::chrono::milliseconds d);

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
    const config::Config& cfg_;
    asio::ssl::stream<tcp::socket> stream_;
    asio::steady_timer timer_;
    std::chrono::steady_clock::time_point deadline_;
    bool implicit_tls_;
    bool tls_ = false;
    bool timed_out_ = false;
    bool closed_ = false;
    std::string ip_;
    std::vector<unsigned char> ip_bytes_;
    bool trusted_ = false;

    std::string rbuf_;   // received, not yet consumed
    std::string out_;    // replies not yet sent (pipelining)

    std::size_t bad_commands_ = 0;
    std::optional<std::string> helo_;
    bool esmtp_ = false;
    std::string auth_user_;
    std::string auth_mode_;  // the user's sender mode, "" = default

    // The transaction in progress.
    bool in_mail_ = false;
    smtp::Mailbox sender_;
    smtp::MailParams mail_params_;
    std::vector<store::Recipient> rcpts_;
};

}  // namespace mailward::server
