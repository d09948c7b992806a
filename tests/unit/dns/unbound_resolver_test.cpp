// The libunbound resolver end to end against a tiny DNS server of the test's own on a loopback UDP
// port (no other peer): every query forwarded (special-use names included), answers typed, rcodes
// classified, malformed rdata refused, deadlines kept, destruction under waiting queries, and
// configuration errors that name the file. DNSSEC against a signed zone is in test_dns.py (knot).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "config/config.hpp"
#include "dns/resolver.hpp"

using namespace mailward;
using dns::DnsErrc;
namespace asio = boost::asio;
using std::string_literals::operator""s;
using namespace std::chrono_literals;

namespace {

constexpr int kA = 1, kMx = 15, kTxt = 16, kAaaa = 28, kTlsa = 52;

// Answers UDP queries from `zone` (name -> records; a name absent is NXDOMAIN, a type absent is
// NODATA); names in `silent` get no reply, `rcodes` force an rcode. Records every query seen.
class TinyDns {
  public:
    struct Rr {
        int type;
        std::string rdata;
    };
    std::map<std::string, std::vector<Rr>> zone;
    std::map<std::string, int> rcodes;
    std::vector<std::string> silent;

    TinyDns() {
        fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof sa;
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
            throw std::runtime_error("TinyDns: cannot bind a loopback UDP port");
        }
        port = ntohs(sa.sin_port);
    }
    ~TinyDns() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        ::close(fd_);
    }
    void start() {
        thread_ = std::thread([this] { loop(); });
    }  // after the tables are filled
    std::vector<std::string> seen() {
        std::lock_guard lk(mu_);
        return seen_;
    }
    config::Endpoint endpoint() const { return {"127.0.0.1", port}; }

    unsigned short port = 0;

  private:
    void loop() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            char buf[1500];
            sockaddr_in from{};
            socklen_t flen = sizeof from;
            ssize_t n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
            if (n < 17) continue;
            std::string q(buf, static_cast<std::size_t>(n));
            auto reply = answer(q);
            if (!reply.empty()) {
                ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
            }
        }
    }

    static void put16(std::string& s, unsigned v) {
        s.push_back(static_cast<char>(v >> 8));
        s.push_back(static_cast<char>(v & 0xff));
    }
    static void put32(std::string& s, unsigned long v) {
        put16(s, static_cast<unsigned>(v >> 16));
        put16(s, static_cast<unsigned>(v & 0xffff));
    }

    std::string answer(const std::string& q) {
        std::size_t pos = 12;
        std::string name;
        while (pos < q.size() && q[pos] != 0) {
            auto len = static_cast<unsigned char>(q[pos]);
            if (len > 63 || pos + 1 + len > q.size()) return {};
            if (!name.empty()) name += '.';
            for (std::size_t i = 0; i < len; ++i) {
                name += static_cast<char>(std::tolower(static_cast<unsigned char>(q[pos + 1 + i])));
            }
            pos += 1 + len;
        }
        if (pos + 5 > q.size()) return {};
        const unsigned type = (static_cast<unsigned char>(q[pos + 1]) << 8) | static_cast<unsigned char>(q[pos + 2]);
        const std::size_t qend = pos + 5;
        {
            std::lock_guard lk(mu_);
            seen_.push_back(name + " " + std::to_string(type));
        }
        if (std::find(silent.begin(), silent.end(), name) != silent.end()) return {};
        int rcode = 0;
        std::vector<const Rr*> rrs;
        if (auto f = rcodes.find(name); f != rcodes.end()) {
            rcode = f->second;
        } else if (auto it = zone.find(name); it == zone.end()) {
            rcode = 3;
        } else {
            for (const auto& rr : it->second) {
                if (static_cast<unsigned>(rr.type) == type) rrs.push_back(&rr);
            }
        }
        const bool soa = rcode == 3 || (rcode == 0 && rrs.empty());
        std::string r = q.substr(0, 2);                                   // id
        put16(r, 0x8000 | 0x0400 | (q[2] & 0x01) << 8 | 0x0080 | rcode);  // QR AA RD(copied) RA rcode
        put16(r, 1);
        put16(r, static_cast<unsigned>(rrs.size()));
        put16(r, soa ? 1 : 0);
        put16(r, 0);
        r += q.substr(12, qend - 12);
        for (const Rr* rr : rrs) {
            put16(r, 0xc00c);  // the question's name
            put16(r, static_cast<unsigned>(rr->type));
            put16(r, 1);
            put32(r, 60);
            put16(r, static_cast<unsigned>(rr->rdata.size()));
            r += rr->rdata;
        }
        if (soa) {
            r += "\x04test\x00"s;
            put16(r, 6);
            put16(r, 1);
            put32(r, 60);
            const std::string mname = "\x02ns\x04test\x00"s, rname = "\x0ahostmaster\x04test\x00"s;
            put16(r, static_cast<unsigned>(mname.size() + rname.size() + 20));
            r += mname + rname;
            for (unsigned long v : {1ul, 3600ul, 600ul, 86400ul, 60ul}) put32(r, v);
        }
        return r;
    }

    int fd_ = -1;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    std::mutex mu_;
    std::vector<std::string> seen_;
};

std::string ipv4(const char* text) {
    std::string out(4, '\0');
    ::inet_pton(AF_INET, text, out.data());
    return out;
}

// A trust anchor for a zone no test asks about: every .test name then resolves as insecure.
std::filesystem::path unrelated_anchor() {
    auto path = std::filesystem::temp_directory_path() / ("dns-test-anchor-" + std::to_string(::getpid()));
    std::ofstream(path) << "elsewhere.invalid. IN DS 12345 13 2 "
                           "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\n";
    return path;
}

// io_context run by two threads for the whole test, as the server runs it.
class UnboundResolverTest : public ::testing::Test {
  protected:
    void SetUp() override {
        for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
    }
    void TearDown() override {
        resolver_.reset();
        work_.reset();
        io_.stop();
        for (auto& t : threads_) t.join();
        std::filesystem::remove(anchor_);
    }

    void make(std::chrono::milliseconds timeout = 3s) {
        config::DnsConfig cfg;
        cfg.servers = {dns_.endpoint()};
        cfg.trust_anchor_file = anchor_;
        cfg.timeout = timeout;
        std::string error;
        auto r = dns::make_unbound_resolver(io_, cfg, error);
        ASSERT_TRUE(r) << error;
        resolver_ = std::move(*r);
    }

    template <class T>
    Result<T> wait(asio::awaitable<Result<T>> op) {
        return asio::co_spawn(io_, std::move(op), asio::use_future).get();
    }

    TinyDns dns_;
    std::filesystem::path anchor_ = unrelated_anchor();
    asio::io_context io_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{io_.get_executor()};
    std::vector<std::thread> threads_;
    std::unique_ptr<dns::Resolver> resolver_;
};

TEST_F(UnboundResolverTest, SpecialUseNamesGoToTheConfiguredServer) {
    for (const char* n : {"host.test", "test", "localhost", "x.invalid", "x.onion", "router.home.arpa"}) {
        dns_.zone[n] = {{kA, ipv4("127.0.0.2")}};
    }
    dns_.start();
    make();
    for (const char* n : {"host.test", "test", "localhost", "x.invalid", "x.onion", "router.home.arpa"}) {
        auto r = wait(resolver_->a(n));
        ASSERT_TRUE(r) << n << ": " << r.error().message();
        EXPECT_EQ(r->addresses, std::vector<std::string>{"127.0.0.2"}) << n;
        EXPECT_EQ(r->security, dns::Security::insecure) << n;
    }
    auto seen = dns_.seen();
    for (const char* n : {"host.test 1", "localhost 1", "x.invalid 1", "x.onion 1"}) {
        EXPECT_NE(std::find(seen.begin(), seen.end(), n), seen.end()) << n;
    }
}

TEST_F(UnboundResolverTest, AnswersAreTyped) {
    dns_.zone["mail.test"] = {
        {kMx, "\x00\x14\x03MX2\x04mail\x04test\x00"s},
        {kMx, "\x00\x0a\x03mx1\x04mail\x04test\x00"s},
        {kTxt, "\x07v=STSv1\x0a; id=2024a"s},
        {kTxt, "\x05other"s},
    };
    dns_.zone["null.test"] = {{kMx, "\x00\x00\x00"s}};
    dns_.zone["v6.test"] = {{kAaaa, std::string(15, '\0') + "\x01"}};
    dns_.zone["_25._tcp.mx1.mail.test"] = {{kTlsa, "\x03\x01\x01\xab\xcd\xef"s}};
    dns_.start();
    make();

    auto mx = wait(resolver_->mx("mail.test"));
    ASSERT_TRUE(mx) << mx.error().message();
    ASSERT_EQ(mx->records.size(), 2u);
    std::map<unsigned, std::string> by_pref;
    for (const auto& r : mx->records) by_pref[r.preference] = r.exchange;
    EXPECT_EQ(by_pref, (std::map<unsigned, std::string>{{10, "mx1.mail.test"}, {20, "mx2.mail.test"}}));
    EXPECT_FALSE(mx->nodata);
    EXPECT_EQ(mx->security, dns::Security::insecure);

    auto null_mx = wait(resolver_->mx("null.test"));
    ASSERT_TRUE(null_mx);
    ASSERT_EQ(null_mx->records.size(), 1u);
    EXPECT_EQ(null_mx->records[0].exchange, "");

    auto txt = wait(resolver_->txt("mail.test"));
    ASSERT_TRUE(txt);
    std::sort(txt->texts.begin(), txt->texts.end());
    EXPECT_EQ(txt->texts, (std::vector<std::string>{"other", "v=STSv1; id=2024a"}));

    auto aaaa = wait(resolver_->aaaa("v6.test"));
    ASSERT_TRUE(aaaa);
    EXPECT_EQ(aaaa->addresses, std::vector<std::string>{"::1"});

    auto tlsa = wait(resolver_->tlsa("_25._tcp.mx1.mail.test"));
    ASSERT_TRUE(tlsa);
    ASSERT_EQ(tlsa->records.size(), 1u);
    EXPECT_EQ(tlsa->records[0].usage, 3);
    EXPECT_EQ(tlsa->records[0].selector, 1);
    EXPECT_EQ(tlsa->records[0].matching_type, 1);
    EXPECT_EQ(tlsa->records[0].data, (std::vector<std::uint8_t>{0xab, 0xcd, 0xef}));

    auto nodata = wait(resolver_->a("mail.test"));  // the name exists, without A records
    ASSERT_TRUE(nodata);
    EXPECT_TRUE(nodata->nodata);
    EXPECT_TRUE(nodata->addresses.empty());
}

TEST_F(UnboundResolverTest, RcodesAndMalformedAnswersAreClassified) {
    dns_.zone["exists.test"] = {{kA, ipv4("127.0.0.3")}};
    dns_.zone["dotted.test"] = {{kMx, "\x00\x0a\x06mx.bad\x04test\x00"s}};  // a '.' inside a label
    dns_.rcodes["broken.test"] = 2;
    dns_.rcodes["refusing.test"] = 5;
    dns_.start();
    make();
    auto nx = wait(resolver_->mx("nope.test"));
    ASSERT_FALSE(nx);
    EXPECT_EQ(nx.error(), DnsErrc::nxdomain);
    EXPECT_FALSE(dns::is_temporary(nx.error()));

    auto bad = wait(resolver_->mx("dotted.test"));
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error(), DnsErrc::bad_response);

    auto sf = wait(resolver_->a("broken.test"));
    ASSERT_FALSE(sf);
    EXPECT_EQ(sf.error(), DnsErrc::servfail);
    // libunbound turns a forwarder's REFUSED into SERVFAIL: temporary either way.
    auto refused = wait(resolver_->a("refusing.test"));
    ASSERT_FALSE(refused);
    EXPECT_TRUE(refused.error() == DnsErrc::servfail || refused.error() == DnsErrc::refused)
        << refused.error().message();
    EXPECT_TRUE(dns::is_temporary(refused.error()));

    auto ok = wait(resolver_->a("exists.test"));  // the failures above left the resolver working
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->addresses, std::vector<std::string>{"127.0.0.3"});
}

TEST_F(UnboundResolverTest, SilentServerTimesOutWithinTheDeadline) {
    dns_.silent = {"slow.test", "slow2.test"};
    dns_.zone["fast.test"] = {{kA, ipv4("127.0.0.4")}};
    dns_.start();
    make(600ms);
    const auto start = std::chrono::steady_clock::now();
    auto f1 = asio::co_spawn(io_, resolver_->mx("slow.test"), asio::use_future);
    auto f2 = asio::co_spawn(io_, resolver_->a("slow2.test"), asio::use_future);
    auto fast = wait(resolver_->a("fast.test"));  // answered while the others wait
    ASSERT_TRUE(fast);
    auto r1 = f1.get();
    auto r2 = f2.get();
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(r1);
    ASSERT_FALSE(r2);
    EXPECT_EQ(r1.error(), DnsErrc::timeout);
    EXPECT_EQ(r2.error(), DnsErrc::timeout);
    EXPECT_TRUE(dns::is_temporary(r1.error()));
    EXPECT_GE(elapsed, 550ms);
    EXPECT_LT(elapsed, 3s);
}

TEST_F(UnboundResolverTest, DestroyingTheResolverCompletesWaitingQueries) {
    dns_.silent = {"slow.test"};
    dns_.start();
    make(30s);
    auto waiting = asio::co_spawn(io_, resolver_->mx("slow.test"), asio::use_future);
    for (int i = 0; i < 200 && dns_.seen().empty(); ++i) std::this_thread::sleep_for(10ms);
    ASSERT_FALSE(dns_.seen().empty());
    const auto start = std::chrono::steady_clock::now();
    resolver_.reset();
    ASSERT_EQ(waiting.wait_for(5s), std::future_status::ready);
    auto r = waiting.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), common::Errc::shutting_down);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(UnboundResolverTest, RootAnchorWithoutARootFailsEveryAnswer) {
    dns_.zone["host.test"] = {{kA, ipv4("127.0.0.5")}};
    dns_.start();
    config::DnsConfig cfg;
    cfg.servers = {dns_.endpoint()};  // no trust_anchor_file: the root anchor, which cannot be validated here
    cfg.timeout = 5s;
    std::string error;
    auto r = dns::make_unbound_resolver(io_, cfg, error);
    ASSERT_TRUE(r) << error;
    resolver_ = std::move(*r);
    auto a = wait(resolver_->a("host.test"));
    ASSERT_FALSE(a) << "an unvalidated answer was accepted under the root anchor";
    EXPECT_TRUE(a.error() == DnsErrc::bogus || a.error() == DnsErrc::servfail) << a.error().message();
}

TEST_F(UnboundResolverTest, ConfigurationErrorsNameTheCause) {
    struct Case {
        const char* what;
        std::string anchor_text;  // "" = no such file
        std::string server_host;
        std::string want;  // in the error
    };
    const auto dir = std::filesystem::temp_directory_path();
    const Case cases[] = {
        {"missing anchor file", "", "127.0.0.1", "No such file"},
        {"garbage anchor file", "this is not a zone file\n", "127.0.0.1", "trust_anchor_file"},
        {"bad server", "elsewhere.invalid. IN DS 12345 13 2 00112233\n", "not-an-address", "[dns] servers"},
    };
    for (const auto& c : cases) {
        auto path = dir / ("dns-test-bad-anchor-" + std::to_string(::getpid()));
        std::filesystem::remove(path);
        if (!c.anchor_text.empty()) std::ofstream(path) << c.anchor_text;
        config::DnsConfig cfg;
        cfg.servers = {{c.server_host, dns_.port}};
        cfg.trust_anchor_file = path;
        std::string error;
        auto r = dns::make_unbound_resolver(io_, cfg, error);
        EXPECT_FALSE(r) << c.what;
        EXPECT_NE(error.find(c.want), std::string::npos) << c.what << ": " << error;
        if (c.anchor_text.size() > 0 && c.server_host != "not-an-address") {
            EXPECT_NE(error.find(path.string()), std::string::npos) << c.what << ": " << error;
        }
        std::filesystem::remove(path);
    }
}

}  // namespace
