// bench sink: a lean SMTP receiver for the benchmarks. Accepts every message, stores nothing,
// counts messages, octets and sessions per TLS protocol, and reports its own CPU time
// (getrusage) so bench/run can check it is never the bottleneck. Trusts nothing it reads
// beyond line length caps; speaks RFC 5321 (subset), RFC 3207 STARTTLS, RFC 2920 PIPELINING.
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::as_tuple;
using asio::use_awaitable;
using asio::ip::tcp;

namespace {

double now_epoch() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct Stats {
    std::mutex mu;
    std::uint64_t sessions = 0;
    std::uint64_t messages = 0;
    std::uint64_t octets = 0;
    std::uint64_t recipients = 0;
    std::map<std::string, std::uint64_t> sessions_by_tls;  // "none", "TLSv1.3", ...
    std::map<std::string, std::uint64_t> messages_by_tls;
    double first_message = 0;  // epoch seconds
    double last_message = 0;
    std::atomic<std::uint64_t> version{0};
    std::atomic<int> open_sessions{0};
};

Stats g_stats;

std::string json_escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        if (static_cast<unsigned char>(c) < 0x20) continue;
        o += c;
    }
    return o;
}

std::string stats_json() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    auto secs = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
    std::lock_guard lk(g_stats.mu);
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "{\"pid\": %d, \"time\": %.6f, \"sessions\": %llu, \"open_sessions\": %d, \"messages\": %llu, "
                  "\"recipients\": %llu, \"octets\": %llu, \"first_message\": %.6f, \"last_message\": %.6f, "
                  "\"cpu_user\": %.6f, \"cpu_sys\": %.6f, \"maxrss_kb\": %ld",
                  static_cast<int>(getpid()), now_epoch(), static_cast<unsigned long long>(g_stats.sessions),
                  g_stats.open_sessions.load(), static_cast<unsigned long long>(g_stats.messages),
                  static_cast<unsigned long long>(g_stats.recipients), static_cast<unsigned long long>(g_stats.octets),
                  g_stats.first_message, g_stats.last_message, secs(ru.ru_utime), secs(ru.ru_stime), ru.ru_maxrss);
    std::string out = buf;
    auto map_json = [](const std::map<std::string, std::uint64_t>& m) {
        std::string s = "{";
        bool first = true;
        for (const auto& [k, v] : m) {
            if (!first) s += ", ";
            first = false;
            s += "\"" + json_escape(k) + "\": " + std::to_string(v);
        }
        return s + "}";
    };
    out += ", \"sessions_by_tls\": " + map_json(g_stats.sessions_by_tls);
    out += ", \"messages_by_tls\": " + map_json(g_stats.messages_by_tls);
    out += "}";
    return out;
}

void write_stats(const std::string& path) {
    if (path.empty()) return;
    std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::trunc);
        f << stats_json() << "\n";
    }
    std::rename(tmp.c_str(), path.c_str());
}

struct Options {
    std::vector<tcp::endpoint> listen;
    std::string cert, key, stats_file, hostname = "sink.bench.test";
    int threads = 1;
    int stats_interval_ms = 100;
    std::size_t max_message = 64 * 1024 * 1024;
};

constexpr std::size_t kMaxLine = 4096;

class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(tcp::socket s, ssl::context* ctx, const Options& o) : stream_(std::move(s), *ctx), opts_(o), ctx_(ctx) {}

    static asio::awaitable<void> run(std::shared_ptr<Session> self) {
        g_stats.open_sessions++;
        co_await self->loop();
        boost::system::error_code ec;
        self->stream_.next_layer().close(ec);
        g_stats.open_sessions--;
    }

  private:
    ssl::stream<tcp::socket> stream_;
    const Options& opts_;
    ssl::context* ctx_;
    bool tls_ = false;
    bool has_cert_ = false;
    std::string in_;   // unread input
    std::string out_;  // pending replies (flushed before every read)
    std::string protocol_ = "none";
    std::unique_ptr<char[]> rbuf_;
    static constexpr std::size_t kReadBuf = 65536;

    asio::awaitable<bool> flush() {
        if (out_.empty()) co_return true;
        boost::system::error_code ec;
        if (tls_)
            std::tie(ec, std::ignore) =
                co_await asio::async_write(stream_, asio::buffer(out_), as_tuple(use_awaitable));
        else
            std::tie(ec, std::ignore) =
                co_await asio::async_write(stream_.next_layer(), asio::buffer(out_), as_tuple(use_awaitable));
        out_.clear();
        co_return !ec;
    }

    asio::awaitable<bool> fill() {
        if (!co_await flush()) co_return false;
        if (!rbuf_) rbuf_ = std::make_unique<char[]>(kReadBuf);
        boost::system::error_code ec;
        std::size_t n = 0;
        if (tls_)
            std::tie(ec, n) =
                co_await stream_.async_read_some(asio::buffer(rbuf_.get(), kReadBuf), as_tuple(use_awaitable));
        else
            std::tie(ec, n) = co_await stream_.next_layer().async_read_some(asio::buffer(rbuf_.get(), kReadBuf),
                                                                            as_tuple(use_awaitable));
        in_.append(rbuf_.get(), n);
        co_return !ec && n > 0;
    }

    // One line without CRLF; false on EOF/error or an over-long line.
    asio::awaitable<bool> line(std::string& l) {
        for (;;) {
            auto nl = in_.find('\n');
            if (nl != std::string::npos) {
                l.assign(in_, 0, nl);
                if (!l.empty() && l.back() == '\r') l.pop_back();
                in_.erase(0, nl + 1);
                co_return true;
            }
            if (in_.size() > kMaxLine) co_return false;
            if (!co_await fill()) co_return false;
        }
    }

    // Consumes the message up to and including CRLF.CRLF; returns its size, or -1. The body
    // starts at a line start (right after "DATA" CRLF), so a bare ".\r\n" first is an empty message.
    asio::awaitable<long long> data() {
        std::string tail = "\r\n";  // the last octets already consumed (at most 4)
        long long total = 0;
        for (;;) {
            // A terminator that begins in the consumed tail and ends in the new input.
            std::string joint = tail + in_.substr(0, std::min<std::size_t>(in_.size(), 4));
            auto p = joint.find("\r\n.\r\n");
            if (p != std::string::npos) {
                std::size_t used = p + 5 - tail.size();
                total += static_cast<long long>(used) - 3;
                in_.erase(0, used);
                co_return std::max(total, 0LL);
            }
            auto pos = in_.find("\r\n.\r\n");
            if (pos != std::string::npos) {
                total += static_cast<long long>(pos + 2);
                in_.erase(0, pos + 5);
                co_return total;
            }
            total += static_cast<long long>(in_.size());
            tail += in_.size() >= 4 ? in_.substr(in_.size() - 4) : in_;
            if (tail.size() > 4) tail.erase(0, tail.size() - 4);
            in_.clear();
            if (static_cast<std::size_t>(total) > opts_.max_message) co_return -1;
            if (!co_await fill()) co_return -1;
        }
    }

    void reply(const char* s) { out_ += s; }

    asio::awaitable<void> loop() {
        {
            std::lock_guard lk(g_stats.mu);
            g_stats.sessions++;
        }
        has_cert_ = !opts_.cert.empty();
        out_ = "220 " + opts_.hostname + " ESMTP bench sink\r\n";
        std::string l;
        bool counted_session = false;
        int rcpts = 0;
        auto count_session = [&] {
            if (counted_session) return;
            counted_session = true;
            std::lock_guard lk(g_stats.mu);
            g_stats.sessions_by_tls[protocol_]++;
        };
        while (co_await line(l)) {
            std::string verb = l.substr(0, std::min<std::size_t>(l.size(), 4));
            for (auto& c : verb) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            if (verb == "EHLO") {
                out_ += "250-" + opts_.hostname + "\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 67108864\r\n";
                if (has_cert_ && !tls_) out_ += "250-STARTTLS\r\n";
                out_ += "250 ENHANCEDSTATUSCODES\r\n";
            } else if (verb == "HELO") {
                reply("250 sink\r\n");
            } else if (verb == "STAR" && has_cert_ && !tls_) {
                reply("220 2.0.0 go ahead\r\n");
                if (!co_await flush()) co_return;
                in_.clear();  // RFC 3207 4.2: discard anything pipelined after STARTTLS
                auto [ec] = co_await stream_.async_handshake(ssl::stream_base::server, as_tuple(use_awaitable));
                if (ec) co_return;
                tls_ = true;
                protocol_ = SSL_get_version(stream_.native_handle());
            } else if (verb == "MAIL") {
                count_session();
                rcpts = 0;
                reply("250 2.1.0 ok\r\n");
            } else if (verb == "RCPT") {
                ++rcpts;
                reply("250 2.1.5 ok\r\n");
            } else if (verb == "DATA") {
                reply("354 go ahead\r\n");
                if (!co_await flush()) co_return;
                long long n = co_await data();
                if (n < 0) co_return;
                double t = now_epoch();
                {
                    std::lock_guard lk(g_stats.mu);
                    g_stats.messages++;
                    g_stats.recipients += static_cast<std::uint64_t>(rcpts);
                    g_stats.octets += static_cast<std::uint64_t>(n);
                    g_stats.messages_by_tls[protocol_]++;
                    if (g_stats.first_message == 0) g_stats.first_message = t;
                    g_stats.last_message = t;
                }
                g_stats.version++;
                reply("250 2.0.0 ok\r\n");
            } else if (verb == "RSET") {
                rcpts = 0;
                reply("250 2.0.0 ok\r\n");
            } else if (verb == "NOOP") {
                reply("250 2.0.0 ok\r\n");
            } else if (verb == "QUIT") {
                reply("221 2.0.0 bye\r\n");
                co_await flush();
                co_return;  // no TLS close_notify: it would cost a round trip, and the peer has its 221
            } else {
                reply("502 5.5.2 not implemented\r\n");
            }
        }
    }
};

asio::awaitable<void> accept_loop(tcp::acceptor& acc, ssl::context* ctx, const Options& opts) {
    for (;;) {
        tcp::socket s(asio::make_strand(acc.get_executor()));
        auto [ec] = co_await acc.async_accept(s, as_tuple(use_awaitable));
        if (ec) {
            if (ec == asio::error::operation_aborted) co_return;
            continue;
        }
        s.set_option(tcp::no_delay(true), ec);
        auto ex = s.get_executor();
        auto sess = std::make_shared<Session>(std::move(s), ctx, opts);
        asio::co_spawn(ex, Session::run(sess), asio::detached);
    }
}

tcp::endpoint parse_endpoint(const std::string& s) {
    auto colon = s.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error("bad endpoint " + s);
    std::string host = s.substr(0, colon);
    if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
    return {asio::ip::make_address(host), static_cast<unsigned short>(std::stoi(s.substr(colon + 1)))};
}

void usage() {
    std::cerr << "usage: sink --listen ADDR:PORT [--listen ...] [--cert PEM --key PEM] [--stats FILE]\n"
                 "            [--stats-interval MS] [--threads N] [--hostname NAME]\n";
}

}  // namespace

int main(int argc, char** argv) {
    Options opts;
    try {
        for (int i = 1; i < argc; ++i) {
            std::string a = argv[i];
            auto val = [&]() -> std::string {
                if (i + 1 >= argc) throw std::runtime_error("missing value for " + a);
                return argv[++i];
            };
            if (a == "--listen") opts.listen.push_back(parse_endpoint(val()));
            else if (a == "--cert") opts.cert = val();
            else if (a == "--key") opts.key = val();
            else if (a == "--stats") opts.stats_file = val();
            else if (a == "--stats-interval") opts.stats_interval_ms = std::stoi(val());
            else if (a == "--threads") opts.threads = std::max(1, std::stoi(val()));
            else if (a == "--hostname") opts.hostname = val();
            else if (a == "-h" || a == "--help") {
                usage();
                return 0;
            } else throw std::runtime_error("unknown option " + a);
        }
        if (opts.listen.empty()) throw std::runtime_error("--listen is required");
        if (opts.cert.empty() != opts.key.empty()) throw std::runtime_error("--cert and --key go together");
    } catch (const std::exception& e) {
        std::cerr << "sink: " << e.what() << "\n";
        usage();
        return 2;
    }

    ssl::context ctx(ssl::context::tls_server);
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3);
    if (!opts.cert.empty()) {
        ctx.use_certificate_chain_file(opts.cert);
        ctx.use_private_key_file(opts.key, ssl::context::pem);
    }

    asio::io_context io(opts.threads);
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    for (const auto& ep : opts.listen) {
        auto acc = std::make_unique<tcp::acceptor>(io);
        acc->open(ep.protocol());
        acc->set_option(asio::socket_base::reuse_address(true));
        acc->bind(ep);
        acc->listen(4096);
        asio::co_spawn(io, accept_loop(*acc, &ctx, opts), asio::detached);
        acceptors.push_back(std::move(acc));
    }

    // Stats file: rewritten when something changed, at most every stats_interval_ms.
    asio::steady_timer tick(io);
    std::uint64_t written = ~0ull;
    std::function<void()> arm = [&] {
        tick.expires_after(std::chrono::milliseconds(opts.stats_interval_ms));
        tick.async_wait([&](boost::system::error_code ec) {
            if (ec) return;
            auto v = g_stats.version.load() + static_cast<std::uint64_t>(g_stats.open_sessions.load()) * 1000003ull;
            if (v != written) {
                write_stats(opts.stats_file);
                written = v;
            }
            arm();
        });
    };
    write_stats(opts.stats_file);
    arm();

    asio::signal_set sigs(io, SIGINT, SIGTERM);
    sigs.async_wait([&](boost::system::error_code, int) {
        for (auto& a : acceptors) a->close();
        tick.cancel();
        io.stop();
    });
    std::cout << "sink: listening, pid " << getpid() << std::endl;

    std::vector<std::thread> threads;
    for (int i = 1; i < opts.threads; ++i) threads.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : threads) t.join();
    write_stats(opts.stats_file);
    std::cout << stats_json() << std::endl;
    return 0;
}
