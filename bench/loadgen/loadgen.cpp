// bench loadgen: drives an SMTP server with N concurrent sessions and measures what it promises:
// messages accepted per second and the accept latency of each message (from the last octet of
// DATA to the 250 reply). Also holds K idle connections (EHLO done) for memory measurements.
// Trusts the server only to speak SMTP (RFC 5321, RFC 2920 PIPELINING, RFC 3207 STARTTLS,
// RFC 4954 AUTH PLAIN); every loop is bounded by a message count and a wall-clock timeout.
#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::as_tuple;
using asio::use_awaitable;
using asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

namespace {

double now_epoch() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct Options {
    tcp::endpoint server;
    std::optional<asio::ip::address> source;
    int sessions = 10;
    long messages = 1000;
    std::size_t size = 4096;
    std::string from = "loadgen@bench.test";
    std::string to = "user@sink.bench.test";
    std::string ehlo = "loadgen.bench.test";
    bool starttls = false;
    std::string auth_user, auth_pass;
    bool new_connection = false;  // one message per connection
    bool rset = false;            // RSET between messages of a reused session
    double rate = 0;              // messages per second overall; 0 = as fast as possible
    double timeout = 300;         // seconds, whole run
    int threads = 1;
    long idle = 0;     // idle mode: open this many connections ...
    double hold = 10;  // ... and hold them this long (seconds)
    int connect_parallel = 200;
    std::string ready_file;
    std::string json_file;
};

std::string base64(const std::string& in) {
    static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
        out += t[v >> 18 & 63];
        out += t[v >> 12 & 63];
        out += t[v >> 6 & 63];
        out += t[v & 63];
    }
    if (i + 1 == in.size()) {
        unsigned v = (unsigned char)in[i] << 16;
        out += t[v >> 18 & 63];
        out += t[v >> 12 & 63];
        out += "==";
    } else if (i + 2 == in.size()) {
        unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
        out += t[v >> 18 & 63];
        out += t[v >> 12 & 63];
        out += t[v >> 6 & 63];
        out += '=';
    }
    return out;
}

// Shared run state. Counters are atomics; each session owns one SessionResult slot.
struct SessionResult {
    std::vector<float> latency_ms;
    long sent = 0;
    long failed = 0;
    long connections = 0;
    long connect_errors = 0;
    std::string tls_protocol;
    std::string last_error;
};

struct Run {
    Options opts;
    std::string body;  // the message body after the per-message headers, ending in CRLF
    std::atomic<long> next{0};
    std::atomic<long> failures{0};
    std::atomic<bool> stop{false};
    SteadyClock::time_point t0;
    std::vector<SessionResult> results;
    std::shared_ptr<ssl::context> tls;
};

struct Reply {
    int code = 0;
    std::string text;  // all lines, CRLF-joined
};

class Client {
  public:
    Client(asio::any_io_executor ex, Run& run) : stream_(tcp::socket(ex), *run.tls), run_(run) {}

    asio::awaitable<bool> connect(std::string& err) {
        boost::system::error_code ec;
        auto& sock = stream_.next_layer();
        if (run_.opts.source) {
            sock.open(run_.opts.server.protocol(), ec);
            if (!ec) sock.bind(tcp::endpoint(*run_.opts.source, 0), ec);
            if (ec) {
                err = "bind: " + ec.message();
                co_return false;
            }
        }
        std::tie(ec) = co_await sock.async_connect(run_.opts.server, as_tuple(use_awaitable));
        if (ec) {
            err = "connect: " + ec.message();
            co_return false;
        }
        sock.set_option(tcp::no_delay(true), ec);
        co_return true;
    }

    asio::awaitable<bool> write(const std::string& data) {
        boost::system::error_code ec;
        if (tls_)
            std::tie(ec, std::ignore) =
                co_await asio::async_write(stream_, asio::buffer(data), as_tuple(use_awaitable));
        else
            std::tie(ec, std::ignore) =
                co_await asio::async_write(stream_.next_layer(), asio::buffer(data), as_tuple(use_awaitable));
        co_return !ec;
    }

    asio::awaitable<std::optional<Reply>> reply() {
        Reply r;
        for (;;) {
            auto nl = in_.find("\r\n");
            if (nl == std::string::npos) {
                if (in_.size() > 65536) co_return std::nullopt;
                char buf[4096];
                boost::system::error_code ec;
                std::size_t n = 0;
                if (tls_)
                    std::tie(ec, n) = co_await stream_.async_read_some(asio::buffer(buf), as_tuple(use_awaitable));
                else
                    std::tie(ec, n) =
                        co_await stream_.next_layer().async_read_some(asio::buffer(buf), as_tuple(use_awaitable));
                if (ec || n == 0) co_return std::nullopt;
                in_.append(buf, n);
                continue;
            }
            std::string line = in_.substr(0, nl);
            in_.erase(0, nl + 2);
            if (line.size() < 3) co_return std::nullopt;
            if (!r.text.empty()) r.text += "\r\n";
            r.text += line;
            if (line.size() == 3 || line[3] == ' ') {
                r.code = std::atoi(line.substr(0, 3).c_str());
                co_return r;
            }
        }
    }

    // Greeting, EHLO, optional STARTTLS (+ EHLO again) and AUTH PLAIN.
    asio::awaitable<bool> hello(std::string& err) {
        auto g = co_await reply();
        if (!g || g->code != 220) {
            err = "greeting: " + (g ? g->text : std::string("connection closed"));
            co_return false;
        }
        if (!co_await ehlo(err)) co_return false;
        if (run_.opts.starttls) {
            if (!co_await write("STARTTLS\r\n")) co_return false;
            auto r = co_await reply();
            if (!r || r->code != 220) {
                err = "STARTTLS: " + (r ? r->text : std::string("connection closed"));
                co_return false;
            }
            auto [ec] = co_await stream_.async_handshake(ssl::stream_base::client, as_tuple(use_awaitable));
            if (ec) {
                err = "TLS handshake: " + ec.message();
                co_return false;
            }
            tls_ = true;
            protocol_ = SSL_get_version(stream_.native_handle());
            if (!co_await ehlo(err)) co_return false;
        }
        if (!run_.opts.auth_user.empty()) {
            std::string cred = std::string(1, '\0') + run_.opts.auth_user + std::string(1, '\0') + run_.opts.auth_pass;
            if (!co_await write("AUTH PLAIN " + base64(cred) + "\r\n")) co_return false;
            auto r = co_await reply();
            if (!r || r->code != 235) {
                err = "AUTH: " + (r ? r->text : std::string("connection closed"));
                co_return false;
            }
        }
        co_return true;
    }

    asio::awaitable<bool> ehlo(std::string& err) {
        if (!co_await write("EHLO " + run_.opts.ehlo + "\r\n")) co_return false;
        auto r = co_await reply();
        if (!r || r->code != 250) {
            err = "EHLO: " + (r ? r->text : std::string("connection closed"));
            co_return false;
        }
        pipelining_ = r->text.find("PIPELINING") != std::string::npos;
        co_return true;
    }

    // One transaction. Returns false if the connection is unusable afterwards; ok says whether the
    // message was accepted, latency_ms is the end-of-DATA to reply time.
    asio::awaitable<bool> send(long index, bool& ok, double& latency_ms, std::string& err) {
        ok = false;
        const auto& o = run_.opts;
        std::string env;
        if (o.rset && sent_in_session_ > 0) env += "RSET\r\n";
        env += "MAIL FROM:<" + o.from + ">\r\nRCPT TO:<" + o.to + ">\r\nDATA\r\n";
        int expect = (o.rset && sent_in_session_ > 0) ? 4 : 3;
        if (pipelining_) {
            if (!co_await write(env)) co_return false;
        }
        // Without PIPELINING: one command at a time.
        std::size_t pos = 0;
        for (int i = 0; i < expect; ++i) {
            if (!pipelining_) {
                auto e = env.find("\r\n", pos);
                if (!co_await write(env.substr(pos, e + 2 - pos))) co_return false;
                pos = e + 2;
            }
            auto r = co_await reply();
            if (!r) {
                err = "connection closed during envelope";
                co_return false;
            }
            bool last = i == expect - 1;
            if ((!last && r->code / 100 != 2) || (last && r->code != 354)) {
                err = r->text;
                // Drain the remaining pipelined replies, then reset the transaction.
                for (int j = i + 1; j < expect; ++j)
                    if (!co_await reply()) co_return false;
                if (!co_await write("RSET\r\n")) co_return false;
                co_return (co_await reply()).has_value();
            }
        }
        char hdr[512];
        std::snprintf(
            hdr, sizeof hdr,
            "From: <%s>\r\nTo: <%s>\r\nSubject: bench message %ld\r\nMessage-ID: <%ld.%.6f@loadgen.bench.test>\r\n",
            o.from.c_str(), o.to.c_str(), index, index, now_epoch());
        std::string msg = hdr;
        msg += run_.body;
        msg += ".\r\n";
        if (!co_await write(msg)) co_return false;
        auto t = SteadyClock::now();
        auto r = co_await reply();
        latency_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - t).count();
        if (!r) {
            err = "connection closed after DATA";
            co_return false;
        }
        ++sent_in_session_;
        if (r->code / 100 == 2) {
            ok = true;
        } else {
            err = r->text;
        }
        co_return true;
    }

    asio::awaitable<void> quit() {
        if (co_await write("QUIT\r\n")) (void)co_await reply();
        boost::system::error_code ec;
        stream_.next_layer().close(ec);
    }

    void close() {
        boost::system::error_code ec;
        stream_.next_layer().close(ec);
    }

    const std::string& protocol() const { return protocol_; }

  private:
    ssl::stream<tcp::socket> stream_;
    Run& run_;
    std::string in_;
    bool tls_ = false;
    bool pipelining_ = false;
    long sent_in_session_ = 0;
    std::string protocol_ = "none";
};

// Claims the next message index, waiting for its slot when a rate is set; -1 when done.
asio::awaitable<long> claim(Run& run) {
    if (run.stop) co_return -1;
    long i = run.next.fetch_add(1);
    if (i >= run.opts.messages) co_return -1;
    if (run.opts.rate > 0) {
        auto due = run.t0 +
                   std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(i / run.opts.rate));
        if (due > SteadyClock::now()) {
            asio::steady_timer t(co_await asio::this_coro::executor, due);
            co_await t.async_wait(as_tuple(use_awaitable));
        }
    }
    co_return i;
}

asio::awaitable<void> session(Run& run, int slot) {
    auto& res = run.results[slot];
    auto ex = co_await asio::this_coro::executor;
    long pending = -1;  // a claimed index whose message has not been sent yet
    while (!run.stop) {
        if (pending < 0) pending = co_await claim(run);
        if (pending < 0) break;
        Client c(ex, run);
        std::string err;
        ++res.connections;
        if (!co_await c.connect(err) || !co_await c.hello(err)) {
            ++res.connect_errors;
            res.last_error = err;
            c.close();
            if (++run.failures > std::max<long>(100, run.opts.messages / 10)) run.stop = true;
            asio::steady_timer t(ex, std::chrono::milliseconds(50));
            co_await t.async_wait(as_tuple(use_awaitable));
            continue;
        }
        res.tls_protocol = c.protocol();
        bool usable = true;
        while (pending >= 0 && usable) {
            bool ok = false;
            double lat = 0;
            usable = co_await c.send(pending, ok, lat, err);
            if (ok) {
                ++res.sent;
                res.latency_ms.push_back(static_cast<float>(lat));
            } else {
                ++res.failed;
                res.last_error = err;
                if (++run.failures > std::max<long>(100, run.opts.messages / 10)) run.stop = true;
            }
            pending = -1;
            if (!usable || run.opts.new_connection) break;
            pending = co_await claim(run);
        }
        if (usable) co_await c.quit();
        else c.close();
    }
}

double percentile(std::vector<float>& v, double p) {
    if (v.empty()) return 0;
    std::size_t k = static_cast<std::size_t>(std::ceil(p / 100.0 * v.size()));
    k = std::min(v.size() - 1, k == 0 ? 0 : k - 1);
    std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
    return v[k];
}

std::string json_str(const std::string& s) {
    std::string o = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        if (static_cast<unsigned char>(c) < 0x20) {
            o += ' ';
            continue;
        }
        o += c;
    }
    return o + "\"";
}

void emit(const Options& o, const std::string& json) {
    if (o.json_file.empty()) {
        std::cout << json << std::endl;
    } else {
        std::ofstream f(o.json_file, std::ios::trunc);
        f << json << "\n";
    }
}

int run_load(Run& run) {
    const auto& o = run.opts;
    // Body: lines of 76 octets (no leading dots) up to the requested size minus the header estimate.
    std::size_t want = o.size > 200 ? o.size - 200 : 0;
    run.body = "\r\n";
    std::string line(76, 'x');
    for (std::size_t i = 0; run.body.size() < want; ++i) {
        line[0] = static_cast<char>('a' + i % 26);
        run.body += line + "\r\n";
    }
    run.results.resize(static_cast<std::size_t>(o.sessions));
    asio::io_context io(o.threads);
    run.t0 = SteadyClock::now();
    double start = now_epoch();
    for (int s = 0; s < o.sessions; ++s) asio::co_spawn(asio::make_strand(io), session(run, s), asio::detached);
    bool timed_out = false;
    asio::steady_timer limit(
        io, std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(o.timeout)));
    limit.async_wait([&](boost::system::error_code ec) {
        if (ec) return;
        timed_out = true;
        run.stop = true;
        io.stop();
    });
    // Stop the timer once every session has finished so io.run() returns.
    asio::steady_timer poll(io);
    std::function<void()> check = [&] {
        poll.expires_after(std::chrono::milliseconds(20));
        poll.async_wait([&](boost::system::error_code ec) {
            if (ec) return;
            if (run.next.load() >= o.messages || run.stop) {
                // sessions finish on their own; io.run() ends when no work is left
                limit.cancel();
                return;
            }
            check();
        });
    };
    check();
    std::vector<std::thread> threads;
    for (int i = 1; i < o.threads; ++i) threads.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : threads) t.join();
    double end = now_epoch();

    std::vector<float> lat;
    long sent = 0, failed = 0, conns = 0, conn_err = 0;
    std::string last_error, proto;
    for (auto& r : run.results) {
        lat.insert(lat.end(), r.latency_ms.begin(), r.latency_ms.end());
        sent += r.sent;
        failed += r.failed;
        conns += r.connections;
        conn_err += r.connect_errors;
        if (!r.last_error.empty()) last_error = r.last_error;
        if (!r.tls_protocol.empty()) proto = r.tls_protocol;
    }
    double elapsed = end - start;
    double sum = 0;
    for (float v : lat) sum += v;
    char buf[1024];
    std::snprintf(buf, sizeof buf,
                  "{\"mode\": \"load\", \"sessions\": %d, \"requested\": %ld, \"size\": %zu, \"sent\": %ld, "
                  "\"failed\": %ld, \"connections\": %ld, \"connect_errors\": %ld, \"timed_out\": %s, "
                  "\"start\": %.6f, \"end\": %.6f, \"elapsed\": %.6f, \"rate\": %.3f, \"target_rate\": %.3f, "
                  "\"latency_ms\": {\"mean\": %.3f, \"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f}, ",
                  o.sessions, o.messages, o.size, sent, failed, conns, conn_err, timed_out ? "true" : "false", start,
                  end, elapsed, elapsed > 0 ? sent / elapsed : 0.0, o.rate, lat.empty() ? 0.0 : sum / lat.size(),
                  percentile(lat, 50), percentile(lat, 90), percentile(lat, 99), percentile(lat, 100));
    std::string json = buf;
    json += "\"tls\": " + json_str(proto) + ", \"last_error\": " + json_str(last_error) + "}";
    emit(o, json);
    return (failed == 0 && !timed_out && sent == o.messages) ? 0 : 1;
}

// Idle mode: K connections that said EHLO and then wait; the caller measures the server's memory.
int run_idle(Run& run) {
    const auto& o = run.opts;
    asio::io_context io(1);
    std::vector<std::unique_ptr<Client>> clients;
    std::mutex mu;
    std::atomic<long> next{0}, ok{0}, bad{0};
    std::string last_error;
    double start = now_epoch();
    auto opener = [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        for (;;) {
            if (run.stop) co_return;
            long i = next.fetch_add(1);
            if (i >= o.idle) co_return;
            auto c = std::make_unique<Client>(ex, run);
            std::string err;
            if (co_await c->connect(err) && co_await c->hello(err)) {
                ++ok;
                std::lock_guard lk(mu);
                clients.push_back(std::move(c));
            } else {
                ++bad;
                c->close();
                std::lock_guard lk(mu);
                last_error = err;
            }
        }
    };
    for (int p = 0; p < std::max(1, o.connect_parallel); ++p) asio::co_spawn(io, opener(), asio::detached);
    bool timed_out = false;
    asio::steady_timer limit(
        io, std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(o.timeout)));
    limit.async_wait([&](boost::system::error_code ec) {
        if (ec) return;
        timed_out = true;
        run.stop = true;
        io.stop();
    });
    // Runs until every opener is done (the limit timer is the only other work).
    while (!timed_out && ok + bad < o.idle) io.run_one();
    double established = now_epoch();
    if (!o.ready_file.empty()) {
        std::ofstream f(o.ready_file + ".tmp", std::ios::trunc);
        f << "{\"established\": " << ok.load() << ", \"failed\": " << bad.load() << "}\n";
        f.close();
        std::rename((o.ready_file + ".tmp").c_str(), o.ready_file.c_str());
    }
    if (!timed_out) {
        // Hold: nothing to do but keep the sockets open (and notice nothing of the server).
        std::this_thread::sleep_for(std::chrono::duration<double>(o.hold));
    }
    limit.cancel();
    for (auto& c : clients) c->close();
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "{\"mode\": \"idle\", \"requested\": %ld, \"established\": %ld, \"failed\": %ld, \"timed_out\": %s, "
                  "\"connect_seconds\": %.3f, \"hold\": %.3f, ",
                  o.idle, ok.load(), bad.load(), timed_out ? "true" : "false", established - start, o.hold);
    emit(o, std::string(buf) + "\"last_error\": " + json_str(last_error) + "}");
    return ok == o.idle ? 0 : 1;
}

tcp::endpoint parse_endpoint(const std::string& s) {
    auto colon = s.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error("bad endpoint " + s);
    std::string host = s.substr(0, colon);
    if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
    return {asio::ip::make_address(host), static_cast<unsigned short>(std::stoi(s.substr(colon + 1)))};
}

const char* kUsage =
    "usage: loadgen --server ADDR:PORT [options]\n"
    "  --sessions N        concurrent SMTP sessions (10)\n"
    "  --messages M        messages in total (1000)\n"
    "  --size BYTES        message size, headers included (4096)\n"
    "  --from ADDR --to ADDR   envelope sender / recipient\n"
    "  --starttls          STARTTLS before the mail transaction\n"
    "  --auth USER:PASS    AUTH PLAIN after EHLO (after STARTTLS if given)\n"
    "  --new-connection    one message per connection (default: reuse sessions)\n"
    "  --rset              RSET between messages of a reused session\n"
    "  --rate R            target messages/s overall (0 = as fast as possible)\n"
    "  --threads T         I/O threads (1)\n"
    "  --timeout S         give up after S seconds (300)\n"
    "  --idle K --hold T   idle mode: open K connections, EHLO, hold T seconds, close\n"
    "  --connect-parallel P  connections being opened at once in idle mode (200)\n"
    "  --ready-file F      idle mode: written once all K connections are open\n"
    "  --source ADDR       local address to connect from\n"
    "  --ehlo NAME         EHLO name\n"
    "  --json FILE         write the JSON result here (default stdout)\n";

}  // namespace

int main(int argc, char** argv) {
    Run run;
    auto& o = run.opts;
    try {
        bool have_server = false;
        for (int i = 1; i < argc; ++i) {
            std::string a = argv[i];
            auto val = [&]() -> std::string {
                if (i + 1 >= argc) throw std::runtime_error("missing value for " + a);
                return argv[++i];
            };
            if (a == "--server") {
                o.server = parse_endpoint(val());
                have_server = true;
            } else if (a == "--sessions") o.sessions = std::stoi(val());
            else if (a == "--messages") o.messages = std::stol(val());
            else if (a == "--size") o.size = std::stoul(val());
            else if (a == "--from") o.from = val();
            else if (a == "--to") o.to = val();
            else if (a == "--ehlo") o.ehlo = val();
            else if (a == "--starttls") o.starttls = true;
            else if (a == "--auth") {
                auto v = val();
                auto c = v.find(':');
                if (c == std::string::npos) throw std::runtime_error("--auth wants USER:PASS");
                o.auth_user = v.substr(0, c);
                o.auth_pass = v.substr(c + 1);
            } else if (a == "--new-connection") o.new_connection = true;
            else if (a == "--rset") o.rset = true;
            else if (a == "--rate") o.rate = std::stod(val());
            else if (a == "--threads") o.threads = std::max(1, std::stoi(val()));
            else if (a == "--timeout") o.timeout = std::stod(val());
            else if (a == "--idle") o.idle = std::stol(val());
            else if (a == "--hold") o.hold = std::stod(val());
            else if (a == "--connect-parallel") o.connect_parallel = std::stoi(val());
            else if (a == "--ready-file") o.ready_file = val();
            else if (a == "--source") o.source = asio::ip::make_address(val());
            else if (a == "--json") o.json_file = val();
            else if (a == "-h" || a == "--help") {
                std::cout << kUsage;
                return 0;
            } else throw std::runtime_error("unknown option " + a);
        }
        if (!have_server) throw std::runtime_error("--server is required");
        if (o.sessions < 1 || o.messages < 0) throw std::runtime_error("--sessions must be >= 1");
        if (o.timeout <= 0 || o.timeout > 3600) throw std::runtime_error("--timeout must be in (0, 3600]");
        if (o.hold < 0 || o.hold > 3600) throw std::runtime_error("--hold must be in [0, 3600]");
    } catch (const std::exception& e) {
        std::cerr << "loadgen: " << e.what() << "\n" << kUsage;
        return 2;
    }
    run.tls = std::make_shared<ssl::context>(ssl::context::tls_client);
    run.tls->set_verify_mode(ssl::verify_none);  // a benchmark client: the server's identity is not the question
    return o.idle > 0 ? run_idle(run) : run_load(run);
}
