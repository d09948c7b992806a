// ConnectionPool as a table: a session put back under one reuse key is taken again only with the
// same key (another level, other TLSA records, REQUIRETLS make another key), a session idle past
// the pool's limit is closed (QUIT) rather than reused, and close_all() closes every idle one.
#include "delivery/pool.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

using namespace mailward;
using namespace mailward::delivery;
namespace asio = boost::asio;

namespace {

// An SMTP session that only counts its QUITs.
class FakeClient : public outbound::SmtpClient {
  public:
    FakeClient(int id, int* quits) : id_(id), quits_(quits) {}
    int id() const { return id_; }
    asio::awaitable<outbound::TransactionResult> send(const store::Envelope&, std::vector<std::size_t>,
                                                      const std::string&) override {
        co_return outbound::TransactionResult{};
    }
    asio::awaitable<void> quit() override {
        ++*quits_;
        co_return;
    }
    const tls::PeerFacts& tls_facts() const override { return facts_; }
    const outbound::Target& target() const override { return target_; }
    const std::vector<std::string>& ehlo_lines() const override { return ehlo_; }
    bool starttls_offered() const override { return false; }
    bool offers_dsn() const override { return false; }

  private:
    int id_;
    int* quits_;
    tls::PeerFacts facts_;
    outbound::Target target_;
    std::vector<std::string> ehlo_;
};

template <class T>
T run(asio::io_context& io, asio::awaitable<T> a) {
    auto f = asio::co_spawn(io, std::move(a), asio::use_future);
    io.restart();
    io.run();
    return f.get();
}

// The id of the session take() returned, or 0 for none.
int take(asio::io_context& io, ConnectionPool& pool, const std::string& key) {
    auto c = run(io, pool.take(key));
    return c ? static_cast<FakeClient&>(*c).id() : 0;
}

outbound::Target target(tls::Level level, std::vector<dns::TlsaRecord> tlsa = {}, std::string user = "",
                        std::string password = "") {
    outbound::Target t;
    t.auth_user = std::move(user);
    t.auth_password = std::move(password);
    t.mx_host = "mx.a.test";
    t.address = "127.0.0.1";
    t.port = 25;
    t.level = level;
    t.tlsa = std::move(tlsa);
    t.helo_name = "relay.test";
    return t;
}

}  // namespace

TEST(ConnectionPool, ReusedOnlyUnderTheSameKey) {
    const std::string put_key = outbound::reuse_key(target(tls::Level::encrypt), false);
    struct Case {
        const char* name;
        std::string key;
        int want;  // the session's id, 0 for none
    };
    const Case cases[] = {
        {"same checks", outbound::reuse_key(target(tls::Level::encrypt), false), 1},
        {"a stricter level", outbound::reuse_key(target(tls::Level::verify), false), 0},
        {"REQUIRETLS", outbound::reuse_key(target(tls::Level::encrypt), true), 0},
        {"TLSA records", outbound::reuse_key(target(tls::Level::encrypt, {{3, 1, 1, {0xab}}}), false), 0},
        {"authenticated (a route's smarthost)", outbound::reuse_key(target(tls::Level::encrypt, {}, "u", "p"), false),
         0},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        asio::io_context io;
        int quits = 0;
        ConnectionPool pool(std::chrono::hours(1));
        pool.put(put_key, std::make_unique<FakeClient>(1, &quits));
        EXPECT_EQ(take(io, pool, c.key), c.want);
        EXPECT_EQ(pool.size(), c.want ? 0u : 1u);  // a session for other checks stays where it was
        EXPECT_EQ(quits, 0);
    }
}

// A session authenticated with some credentials goes only to a target with the very same ones.
TEST(ConnectionPool, AuthenticatedSessionsStayWithTheirCredentials) {
    const auto key = [](const char* user, const char* password) {
        return outbound::reuse_key(target(tls::Level::verify, {}, user, password), false);
    };
    EXPECT_EQ(key("relay", "right"), key("relay", "right"));
    EXPECT_NE(key("relay", "right"), key("relay", "wrong"));
    EXPECT_NE(key("relay", "right"), key("other", "right"));
    EXPECT_NE(key("relay", "right"), key("", ""));
    EXPECT_EQ(key("relay", "right").find("right"), std::string::npos) << "the password itself is not in the key";
}

TEST(ConnectionPool, StaleSessionsAreClosedNotReused) {
    struct Case {
        const char* name;
        std::chrono::steady_clock::duration max_idle;
        int want, quits;
    };
    const Case cases[] = {
        {"fresh", std::chrono::hours(1), 1, 0},
        {"idle past the limit", std::chrono::steady_clock::duration::zero(), 0, 1},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        asio::io_context io;
        int quits = 0;
        ConnectionPool pool(c.max_idle);
        pool.put("k", std::make_unique<FakeClient>(1, &quits));
        EXPECT_EQ(take(io, pool, "k"), c.want);
        EXPECT_EQ(quits, c.quits);
        EXPECT_EQ(pool.size(), 0u);
    }
}

TEST(ConnectionPool, SessionsUnderOneKeyAreEachTakenOnce) {
    asio::io_context io;
    int quits = 0;
    ConnectionPool pool(std::chrono::hours(1));
    pool.put("k", std::make_unique<FakeClient>(1, &quits));
    pool.put("k", std::make_unique<FakeClient>(2, &quits));
    const int first = take(io, pool, "k");
    const int second = take(io, pool, "k");
    EXPECT_EQ(first + second, 3);
    EXPECT_NE(first, second);
    EXPECT_EQ(take(io, pool, "k"), 0);
}

TEST(ConnectionPool, CloseAllQuitsEveryIdleSession) {
    asio::io_context io;
    int quits = 0;
    ConnectionPool pool(std::chrono::hours(1));
    pool.put("a", std::make_unique<FakeClient>(1, &quits));
    pool.put("a", std::make_unique<FakeClient>(2, &quits));
    pool.put("b", std::make_unique<FakeClient>(3, &quits));
    pool.put("c", nullptr);  // nothing to keep
    EXPECT_EQ(pool.size(), 3u);
    auto f = asio::co_spawn(io, pool.close_all(), asio::use_future);
    io.run();
    f.get();
    EXPECT_EQ(quits, 3);
    EXPECT_EQ(pool.size(), 0u);
}
