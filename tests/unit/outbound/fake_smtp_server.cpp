// The scripted SMTP server of the client tests (see fake_smtp_server.hpp): POSIX sockets and
// OpenSSL on one thread; every read bounded by poll() and an overall deadline so a test that goes
// wrong fails instead of hanging.
#include "fake_smtp_server.hpp"

#include <arpa/inet.h>
#include <csignal>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace mailward::testing {
namespace {

constexpr auto kSessionDeadline = std::chrono::seconds(20);

bool starts_with(const std::string& s, std::string_view p) { return s.compare(0, p.size(), p) == 0; }

std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

class Conn {
  public:
    Conn(int fd, const std::atomic<bool>& stop, std::chrono::steady_clock::time_point deadline)
        : fd_(fd), stop_(stop), deadline_(deadline) {}
    ~Conn() {
        if (ssl_) SSL_free(ssl_);
    }

    // Appends what arrives to out; false on EOF, error, stop or deadline.
    bool read(std::string& out) {
        char buf[65536];
        for (;;) {
            if (stop_ || std::chrono::steady_clock::now() > deadline_) return false;
            if (!ssl_ || SSL_pending(ssl_) == 0) {
                pollfd p{fd_, POLLIN, 0};
                int rc = ::poll(&p, 1, 50);
                if (rc < 0) return false;
                if (rc == 0) continue;
            }
            long n = ssl_ ? SSL_read(ssl_, buf, sizeof buf) : ::recv(fd_, buf, sizeof buf, 0);
            if (n > 0) {
                out.append(buf, static_cast<std::size_t>(n));
                return true;
            }
            if (ssl_ && SSL_get_error(ssl_, static_cast<int>(n)) == SSL_ERROR_WANT_READ) continue;
            return false;
        }
    }

    void write(std::string_view s) {
        if (ssl_) {
            if (!s.empty()) SSL_write(ssl_, s.data(), static_cast<int>(s.size()));
            return;
        }
        while (!s.empty()) {
            ssize_t n = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
            if (n <= 0) return;
            s.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    bool start_tls(SSL_CTX* ctx) {
        ssl_ = SSL_new(ctx);
        SSL_set_fd(ssl_, fd_);
        const bool ok = SSL_accept(ssl_) == 1;
        if (!ok) {
            SSL_free(ssl_);
            ssl_ = nullptr;
        }
        return ok;
    }

    void shutdown_tls() {
        if (ssl_) SSL_shutdown(ssl_);
    }

    bool tls() const { return ssl_ != nullptr; }

  private:
    int fd_;
    SSL* ssl_ = nullptr;
    const std::atomic<bool>& stop_;
    std::chrono::steady_clock::time_point deadline_;
};

}  // namespace

FakeSmtpServer::FakeSmtpServer(Script script, int connections) : script_(std::move(script)), connections_(connections) {
    std::signal(SIGPIPE, SIG_IGN);  // SSL_write to a client that already left must not kill the test
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 8) != 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        std::perror("FakeSmtpServer");
        std::abort();
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
}

FakeSmtpServer::~FakeSmtpServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
}

std::vector<Session> FakeSmtpServer::sessions() {
    if (thread_.joinable()) thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    return sessions_;
}

void FakeSmtpServer::run() {
    const auto deadline = std::chrono::steady_clock::now() + kSessionDeadline;
    for (int i = 0; i < connections_; ++i) {
        int fd = -1;
        while (fd < 0) {
            if (stop_ || std::chrono::steady_clock::now() > deadline) return;
            pollfd p{listen_fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) > 0) fd = ::accept(listen_fd_, nullptr, nullptr);
        }
        serve(fd);
        ::close(fd);
    }
}

void FakeSmtpServer::serve(int fd) {
    const Script& s = script_;
    Session log;
    Conn c(fd, stop_, std::chrono::steady_clock::now() + kSessionDeadline);
    auto finish = [&] {
        std::lock_guard<std::mutex> lock(mu_);
        sessions_.push_back(log);
    };
    auto drain = [&] {  // until the client closes
        std::string ignored;
        while (c.read(ignored)) log.reads.push_back(std::exchange(ignored, {}));
    };
    for (auto waited = std::chrono::milliseconds(0); waited < s.greeting_delay && !stop_;
         waited += std::chrono::milliseconds(10)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    c.write(s.greeting + "\r\n");
    const bool in_service = starts_with(s.greeting, "220");

    std::string buf;
    std::string data;
    bool in_data = false, in_tx = false;
    int accepted = 0;
    std::size_t finals = 0;
    for (;;) {
        if (in_data) {
            data += buf;
            buf.clear();
            std::size_t end = std::string::npos;
            if (starts_with(data, ".\r\n")) {
                end = 3;
            } else if (auto p = data.find("\r\n.\r\n"); p != std::string::npos) {
                end = p + 5;
            }
            if (end == std::string::npos) {
                std::string more;
                if (!c.read(more)) break;
                log.reads.push_back(more);
                buf += more;
                continue;
            }
            log.messages.push_back(data.substr(0, end));
            buf = data.substr(end);
            data.clear();
            in_data = false;
            in_tx = false;
            accepted = 0;
            if (s.silent_after_data) {
                drain();
                break;
            }
            const std::size_t k = std::min(finals++, s.final_replies.size() - 1);
            c.write(s.final_replies[k] + "\r\n");
            continue;
        }
        const auto eol = buf.find("\r\n");
        if (eol == std::string::npos) {
            std::string more;
            if (!c.read(more)) break;
            log.reads.push_back(more);
            buf += more;
            continue;
        }
        const std::string line = buf.substr(0, eol);
        buf.erase(0, eol + 2);
        log.commands.push_back((c.tls() ? "(tls) " : "") + line);
        const std::string verb = upper(line.substr(0, line.find(' ')));
        if (!in_service && verb != "QUIT") {
            c.write("503 5.5.1 no service here\r\n");
            continue;
        }
        if (verb == "EHLO") {
            if (!s.ehlo_reply.empty() && !c.tls()) {
                c.write(s.ehlo_reply + "\r\n");
                continue;
            }
            std::vector<std::string> kws = c.tls() && !s.ehlo_tls.empty() ? s.ehlo_tls : s.ehlo;
            std::vector<std::string> lines{"fake.example.test"};
            for (const auto& k : kws) {
                if (!(c.tls() && upper(k) == "STARTTLS")) lines.push_back(k);
            }
            std::string out;
            for (std::size_t i = 0; i < lines.size(); ++i)
                out += "250" + std::string(i + 1 < lines.size() ? "-" : " ") + lines[i] + "\r\n";
            c.write(out);
        } else if (verb == "HELO") {
            c.write("250 fake.example.test\r\n");
        } else if (verb == "STARTTLS") {
            if (!starts_with(s.starttls_reply, "220")) {
                c.write(s.starttls_reply + "\r\n");
                continue;
            }
            if (s.starttls_then_inject) {
                c.write(s.starttls_reply + "\r\n250 injected\r\n");
                drain();
                break;
            }
            c.write(s.starttls_reply + "\r\n");
            if (s.starttls_then_close || !s.tls) break;
            buf.clear();
            if (!c.start_tls(s.tls)) break;
            log.tls = true;
            if (s.silent_after_tls) {
                drain();
                break;
            }
        } else if (verb == "MAIL") {
            in_tx = starts_with(s.mail_reply, "2");
            accepted = 0;
            c.write(s.mail_reply + "\r\n");
        } else if (verb == "RCPT") {
            const auto lt = line.find('<'), gt = line.find('>');
            const std::string addr = lt != std::string::npos && gt > lt ? line.substr(lt + 1, gt - lt - 1) : "";
            auto it = s.rcpt_replies.find(addr);
            std::string r = it != s.rcpt_replies.end() ? it->second : "250 2.1.5 recipient ok";
            if (!in_tx) r = "503 5.5.1 MAIL first";
            if (starts_with(r, "2")) ++accepted;
            c.write(r + "\r\n");
        } else if (verb == "DATA") {
            std::string r = !s.data_reply.empty()     ? s.data_reply
                            : (in_tx && accepted > 0) ? "354 end with <CRLF>.<CRLF>"
                                                      : "554 5.5.1 no valid recipients";
            c.write(r + "\r\n");
            if (starts_with(r, "354")) in_data = true;
        } else if (verb == "RSET") {
            in_tx = false;
            accepted = 0;
            c.write("250 2.0.0 reset\r\n");
        } else if (verb == "NOOP") {
            c.write("250 2.0.0 ok\r\n");
        } else if (verb == "QUIT") {
            c.write("221 2.0.0 bye\r\n");
            c.shutdown_tls();
            break;
        } else {
            c.write("502 5.5.2 unknown command\r\n");
        }
    }
    finish();
}

}  // namespace mailward::testing
