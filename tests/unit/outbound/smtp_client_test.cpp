// The outbound SMTP client against a scripted server on 127.0.0.1, asserting the exact commands
// and bytes on the wire: PIPELINING (RFC 2920), SIZE (RFC 1870) and 8BITMIME/SMTPUTF8/REQUIRETLS
// refused before MAIL, DSN parameters (RFC 3461), dot-stuffing (RFC 5321 4.5.2), partial and total
// RCPT failure, greeting and EHLO failures, deadlines, and STARTTLS at each level (RFC 3207): at
// encrypt and above no MAIL is ever sent unless TLS was established and met the level.
#include <algorithm>
#include <functional>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "../tls/test_pki.hpp"
#include "common/gcc_wrestrict.hpp"
#include "fake_smtp_server.hpp"
#include "outbound/smtp_client.hpp"

namespace asio = boost::asio;
using namespace mailward;
using namespace mailward::outbound;
using mailward::testing::FakeSmtpServer;
using mailward::testing::Script;
using mailward::testing::Session;

using namespace std::string_literals;

namespace {

const std::string kBody = "Subject: t\r\n\r\nhello\r\n";

struct Msg {
    store::Envelope env;
    std::vector<std::size_t> rcpts;
    std::string body = kBody;
};

Msg message(std::vector<std::string> rcpts = {"bob@example.net"}, std::string body = kBody) {
    Msg m;
    m.env.sender = "alice@example.org";
    for (auto& r : rcpts) {
        store::Recipient rc;
        rc.address = std::move(r);
        m.rcpts.push_back(m.env.recipients.size());
        m.env.recipients.push_back(std::move(rc));
    }
    m.body = std::move(body);
    return m;
}

struct Outcome {
    std::optional<SessionError> connect_error;
    bool connected = false;
    std::vector<TransactionResult> results;
    tls::PeerFacts facts;
    std::vector<std::string> ehlo;
    bool starttls_offered = false;
};

asio::awaitable<void> drive(Target target, tls::ClientContext ctx, ClientTimeouts to, std::vector<Msg> msgs,
                            Outcome* out) {
    auto ex = co_await asio::this_coro::executor;
    auto [client, err] = co_await SmtpClient::connect(ex, target, ctx, to);
    out->connect_error = err;
    if (!client) co_return;
    out->connected = true;
    out->facts = client->tls_facts();
    out->ehlo = client->ehlo_lines();
    out->starttls_offered = client->starttls_offered();
    for (const auto& m : msgs) {
        TransactionResult r = co_await client->send(m.env, m.rcpts, m.body);
        out->results.push_back(std::move(r));
    }
    co_await client->quit();
}

ClientTimeouts quick(std::chrono::milliseconds all = std::chrono::milliseconds(5000)) {
    ClientTimeouts t;
    t.connect = t.greeting = t.command = t.data_init = t.data_block = t.data_done = all;
    return t;
}

class SmtpClientTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        ca_ = new mailward::testing::TestCa();
        dir_ = new mailward::testing::TempDir();
        std::string error;
        auto ctx = tls::make_client_context(dir_->write("ca.pem", ca_->cert_pem()), error);
        ASSERT_TRUE(ctx) << error;
        ctx_ = new tls::ClientContext(*ctx);
    }
    static void TearDownTestSuite() {
        delete ctx_;
        delete dir_;
        delete ca_;
    }

    Outcome talk(FakeSmtpServer& server, tls::Level level, std::vector<Msg> msgs, ClientTimeouts to = quick(),
                 std::vector<dns::TlsaRecord> tlsa = {}) {
        Target t;
        t.mx_host = "mx.example.test";
        t.address = "127.0.0.1";
        t.port = server.port();
        t.level = level;
        t.tlsa = std::move(tlsa);
        t.helo_name = "relay.example.test";
        asio::io_context io;
        Outcome out;
        asio::co_spawn(io, drive(t, *ctx_, to, std::move(msgs), &out), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
        io.run();
        return out;
    }

    static mailward::testing::TestCa* ca_;
    static mailward::testing::TempDir* dir_;
    static tls::ClientContext* ctx_;
};
mailward::testing::TestCa* SmtpClientTest::ca_ = nullptr;
mailward::testing::TempDir* SmtpClientTest::dir_ = nullptr;
tls::ClientContext* SmtpClientTest::ctx_ = nullptr;

using Lines = std::vector<std::string>;
const std::string kEhlo = "EHLO relay.example.test";
const std::string kMail = "MAIL FROM:<alice@example.org> SIZE=" + std::to_string(kBody.size());
const std::string kRcptBob = "RCPT TO:<bob@example.net>";
const std::string kRcptCarol = "RCPT TO:<carol@example.net>";

bool has_read(const Session& s, const std::string& exact) {
    return std::find(s.reads.begin(), s.reads.end(), exact) != s.reads.end();
}

// ---- transactions in plaintext (level may, no STARTTLS offered) ----

TEST_F(SmtpClientTest, PipelinedTransactionIsOneWrite) {
    FakeSmtpServer server(Script{});
    auto r = talk(server, tls::Level::may, {message({"bob@example.net", "carol@example.net"})});
    auto s = server.sessions().at(0);
    ASSERT_TRUE(r.connected);
    EXPECT_FALSE(r.starttls_offered);
    EXPECT_FALSE(r.facts.established);
    EXPECT_EQ(s.commands, (Lines{kEhlo, kMail, kRcptBob, kRcptCarol, "DATA", "QUIT"}));
    EXPECT_TRUE(has_read(s, kMail + "\r\n" + kRcptBob + "\r\n" + kRcptCarol + "\r\nDATA\r\n")) << s.reads.size();
    ASSERT_EQ(s.messages.size(), 1u);
    EXPECT_EQ(s.messages[0], kBody + ".\r\n");
    ASSERT_EQ(r.results.size(), 1u);
    const auto& tr = r.results[0];
    EXPECT_FALSE(tr.error);
    EXPECT_TRUE(tr.connection_usable);
    ASSERT_EQ(tr.recipients.size(), 2u);
    for (std::size_t i = 0; i < 2; ++i) {
        EXPECT_EQ(tr.recipients[i].index, i);
        EXPECT_TRUE(tr.recipients[i].accepted);
        EXPECT_EQ(tr.recipients[i].reply.code, 250);
        EXPECT_EQ(tr.recipients[i].reply.enhanced, "2.0.0");
    }
}

TEST_F(SmtpClientTest, WithoutPipeliningOneCommandAtATime) {
    Script sc;
    sc.ehlo = {"8BITMIME", "SIZE"};
    FakeSmtpServer server(sc);
    auto r = talk(server, tls::Level::may, {message({"bob@example.net", "carol@example.net"})});
    auto s = server.sessions().at(0);
    EXPECT_EQ(s.commands, (Lines{kEhlo, kMail, kRcptBob, kRcptCarol, "DATA", "QUIT"}));
    for (const auto& c : {kMail, kRcptBob, kRcptCarol, std::string("DATA")}) EXPECT_TRUE(has_read(s, c + "\r\n")) << c;
    ASSERT_EQ(r.results.size(), 1u);
    EXPECT_FALSE(r.results[0].error);
    EXPECT_EQ(r.results[0].recipients.size(), 2u);
}

TEST_F(SmtpClientTest, DsnAndBodyParametersRendered) {
    struct Case {
        const char* name;
        std::vector<std::string> ehlo;
        Lines expected;
    };
    Msg m = message({"bob@example.net", "carol@example.net", "dave@example.net"});
    m.env.ret = store::DsnRet::hdrs;
    m.env.envid = "a+b=c d";
    m.env.body_type = store::BodyType::eight_bit_mime;
    m.env.smtputf8 = true;
    m.env.recipients[0].notify = store::notify_success | store::notify_failure;
    m.env.recipients[0].orcpt = "rfc822;bob+1@x.example";
    m.env.recipients[1].notify = store::notify_never;
    m.env.recipients[2].notify = store::notify_delay | store::notify_failure;
    const std::string size = std::to_string(kBody.size());
    const Case cases[] = {
        {"DSN offered",
         {"PIPELINING", "8BITMIME", "SMTPUTF8", "DSN", "SIZE 1000"},
         {kEhlo, "MAIL FROM:<alice@example.org> SIZE=" + size + " BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=a+2Bb+3Dc+20d",
          "RCPT TO:<bob@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2B1@x.example",
          "RCPT TO:<carol@example.net> NOTIFY=NEVER", "RCPT TO:<dave@example.net> NOTIFY=FAILURE,DELAY", "DATA",
          "QUIT"}},
        {"no DSN, no SIZE: no such parameters",
         {"8BITMIME", "SMTPUTF8"},
         {kEhlo, "MAIL FROM:<alice@example.org> BODY=8BITMIME SMTPUTF8", "RCPT TO:<bob@example.net>",
          "RCPT TO:<carol@example.net>", "RCPT TO:<dave@example.net>", "DATA", "QUIT"}},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        Script sc;
        sc.ehlo = c.ehlo;
        FakeSmtpServer server(sc);
        auto r = talk(server, tls::Level::may, {m});
        EXPECT_EQ(server.sessions().at(0).commands, c.expected);
        ASSERT_EQ(r.results.size(), 1u);
        EXPECT_FALSE(r.results[0].error);
    }
}

TEST_F(SmtpClientTest, NullSender) {
    FakeSmtpServer server(Script{});
    Msg m = message();
    m.env.sender = "";
    talk(server, tls::Level::may, {m});
    EXPECT_EQ(server.sessions().at(0).commands.at(1), "MAIL FROM:<> SIZE=" + std::to_string(kBody.size()));
}

// What the EHLO reply rules out is refused before MAIL, named by its Refusal (no reply is made up:
// the classifier gives the status), and the connection stays usable: the next message goes out on it.
TEST_F(SmtpClientTest, RefusedBeforeMail) {
    struct Case {
        const char* name;
        std::vector<std::string> ehlo;
        Msg msg;
        Refusal refusal;
        const char* detail_has;
    };
    Msg big = message({"bob@example.net"}, "Subject: big\r\n\r\n" + std::string(200, 'x') + "\r\n");
    Msg eight = message();
    eight.env.body_type = store::BodyType::eight_bit_mime;
    Msg utf8 = message({"bøb@example.net"});
    utf8.env.smtputf8 = true;
    Msg requiretls = message();
    requiretls.env.requiretls = true;
    const Case cases[] = {
        {"SIZE", {"PIPELINING", "8BITMIME", "SIZE 100"}, big, Refusal::size_exceeded, "100"},
        {"8BITMIME", {"PIPELINING", "SIZE 1000"}, eight, Refusal::no_8bitmime, "8BITMIME"},
        {"SMTPUTF8", {"PIPELINING", "8BITMIME"}, utf8, Refusal::no_smtputf8, "SMTPUTF8"},
        {"REQUIRETLS without TLS", {"PIPELINING", "REQUIRETLS"}, requiretls, Refusal::no_requiretls, "TLS"},
        {"REQUIRETLS not offered", {"PIPELINING"}, requiretls, Refusal::no_requiretls, "REQUIRETLS"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        Script sc;
        sc.ehlo = c.ehlo;
        FakeSmtpServer server(sc);
        auto r = talk(server, tls::Level::may, {c.msg, message({"carol@example.net"})});
        auto s = server.sessions().at(0);
        ASSERT_EQ(r.results.size(), 2u);
        const auto& first = r.results[0];
        ASSERT_TRUE(first.error);
        EXPECT_EQ(first.error->stage, Stage::mail);
        EXPECT_EQ(first.error->refusal, c.refusal);
        EXPECT_FALSE(first.error->reply);
        EXPECT_NE(first.error->detail.find(c.detail_has), std::string::npos) << first.error->detail;
        EXPECT_TRUE(first.connection_usable);
        EXPECT_FALSE(r.results[1].error);
        // Only the second message's MAIL reached the server.
        ASSERT_GE(s.commands.size(), 2u);
        EXPECT_EQ(std::count_if(s.commands.begin(), s.commands.end(),
                                [](const std::string& l) { return l.rfind("MAIL", 0) == 0; }),
                  1);
        EXPECT_EQ(s.commands.back(), "QUIT");
        ASSERT_EQ(s.messages.size(), 1u);
    }
}

TEST_F(SmtpClientTest, RcptPartialFailure) {
    for (bool pipelining : {true, false}) {
        SCOPED_TRACE(pipelining ? "pipelined" : "one at a time");
        Script sc;
        sc.ehlo = pipelining ? std::vector<std::string>{"PIPELINING", "SIZE"} : std::vector<std::string>{"SIZE"};
        sc.rcpt_replies["carol@example.net"] = "550 5.1.1 no such user";
        FakeSmtpServer server(sc);
        auto r = talk(server, tls::Level::may, {message({"bob@example.net", "carol@example.net"})});
        auto s = server.sessions().at(0);
        EXPECT_EQ(s.commands, (Lines{kEhlo, kMail, kRcptBob, kRcptCarol, "DATA", "QUIT"}));
        ASSERT_EQ(s.messages.size(), 1u);
        ASSERT_EQ(r.results.size(), 1u);
        const auto& tr = r.results[0];
        EXPECT_FALSE(tr.error);
        ASSERT_EQ(tr.recipients.size(), 2u);
        for (const auto& rr : tr.recipients) {
            if (rr.index == 0) {
                EXPECT_TRUE(rr.accepted);
                EXPECT_EQ(rr.reply.code, 250);
            } else {
                EXPECT_EQ(rr.index, 1u);
                EXPECT_FALSE(rr.accepted);
                EXPECT_EQ(rr.reply.code, 550);
                EXPECT_EQ(rr.reply.enhanced, "5.1.1");
            }
        }
    }
}

// No recipient accepted: no message. Pipelined, the server refuses the DATA it already got (or,
// if it says 354 anyway, the client ends an empty message with a lone "."); then RSET.
TEST_F(SmtpClientTest, NoRecipientAccepted) {
    struct Case {
        const char* name;
        std::vector<std::string> ehlo;
        std::string data_reply;
        Lines expected;
        std::vector<std::string> messages;
    };
    const Case cases[] = {
        {"pipelined, DATA refused",
         {"PIPELINING", "SIZE"},
         "",
         {kEhlo, kMail, kRcptBob, kRcptCarol, "DATA", "RSET", "QUIT"},
         {}},
        {"pipelined, DATA answered 354",
         {"PIPELINING", "SIZE"},
         "354 go ahead",
         {kEhlo, kMail, kRcptBob, kRcptCarol, "DATA", "RSET", "QUIT"},
         {".\r\n"}},
        {"one at a time: no DATA", {"SIZE"}, "", {kEhlo, kMail, kRcptBob, kRcptCarol, "RSET", "QUIT"}, {}},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        Script sc;
        sc.ehlo = c.ehlo;
        sc.data_reply = c.data_reply;
        sc.rcpt_replies["bob@example.net"] = "550 5.1.1 unknown";
        sc.rcpt_replies["carol@example.net"] = "450 4.2.1 mailbox busy";
        FakeSmtpServer server(sc);
        auto r = talk(server, tls::Level::may, {message({"bob@example.net", "carol@example.net"})});
        auto s = server.sessions().at(0);
        EXPECT_EQ(s.commands, c.expected);
        EXPECT_EQ(s.messages, c.messages);
        ASSERT_EQ(r.results.size(), 1u);
        EXPECT_FALSE(r.results[0].error);
        EXPECT_TRUE(r.results[0].connection_usable);
        ASSERT_EQ(r.results[0].recipients.size(), 2u);
        EXPECT_EQ(r.results[0].recipients[0].reply.code, 550);
        EXPECT_EQ(r.results[0].recipients[1].reply.code, 450);
        EXPECT_FALSE(r.results[0].recipients[0].accepted || r.results[0].recipients[1].accepted);
    }
}

TEST_F(SmtpClientTest, MailRefused) {
    for (bool pipelining : {true, false}) {
        SCOPED_TRACE(pipelining ? "pipelined" : "one at a time");
        Script sc;
        sc.ehlo = pipelining ? std::vector<std::string>{"PIPELINING", "SIZE"} : std::vector<std::string>{"SIZE"};
        sc.mail_reply = "550 5.7.1 sender refused";
        FakeSmtpServer server(sc);
        auto r = talk(server, tls::Level::may, {message()});
        auto s = server.sessions().at(0);
        EXPECT_EQ(s.commands,
                  pipelining ? (Lines{kEhlo, kMail, kRcptBob, "DATA", "QUIT"}) : (Lines{kEhlo, kMail, "QUIT"}));
        EXPECT_TRUE(s.messages.empty());
        ASSERT_EQ(r.results.size(), 1u);
        ASSERT_TRUE(r.results[0].error);
        EXPECT_EQ(r.results[0].error->stage, Stage::mail);
        ASSERT_TRUE(r.results[0].error->reply);
        EXPECT_EQ(r.results[0].error->reply->code, 550);
        EXPECT_TRUE(r.results[0].connection_usable);
    }
}

TEST_F(SmtpClientTest, Reply421EndsTheConnection) {
    Script sc;
    sc.ehlo = {"SIZE"};
    sc.mail_reply = "421 4.3.2 shutting down";
    FakeSmtpServer server(sc);
    auto r = talk(server, tls::Level::may, {message(), message()});
    auto s = server.sessions().at(0);
    EXPECT_EQ(s.commands, (Lines{kEhlo, kMail}));  // nothing after 421, not even QUIT
    ASSERT_EQ(r.results.size(), 2u);
    ASSERT_TRUE(r.results[0].error && r.results[0].error->reply);
    EXPECT_EQ(r.results[0].error->reply->code, 421);
    EXPECT_FALSE(r.results[0].connection_usable);
    ASSERT_TRUE(r.results[1].error);
    EXPECT_FALSE(r.results[1].connection_usable);
}

TEST_F(SmtpClientTest, DataRefusedThenRsetAndReuse) {
    Script sc;
    sc.ehlo = {"SIZE"};
    sc.data_reply = "451 4.3.0 try again later";
    FakeSmtpServer server(sc);
    auto r = talk(server, tls::Level::may, {message(), message({"carol@example.net"})});
    auto s = server.sessions().at(0);
    EXPECT_EQ(s.commands, (Lines{kEhlo, kMail, kRcptBob, "DATA", "RSET", kMail, kRcptCarol, "DATA", "RSET", "QUIT"}));
    ASSERT_EQ(r.results.size(), 2u);
    ASSERT_TRUE(r.results[0].error && r.results[0].error->reply);
    EXPECT_EQ(r.results[0].error->stage, Stage::data);
    EXPECT_EQ(r.results[0].error->reply->code, 451);
    EXPECT_TRUE(r.results[0].connection_usable);
}

TEST_F(SmtpClientTest, SeveralMessagesOnOneConnection) {
    Script sc;
    sc.final_replies = {"554 5.6.0 content rejected", "250 2.0.0 second queued"};
    FakeSmtpServer server(sc);
    auto r = talk(server, tls::Level::may, {message(), message({"carol@example.net"})});
    auto s = server.sessions().at(0);
    EXPECT_EQ(s.commands, (Lines{kEhlo, kMail, kRcptBob, "DATA", kMail, kRcptCarol, "DATA", "QUIT"}));
    ASSERT_EQ(r.results.size(), 2u);
    ASSERT_TRUE(r.results[0].error && r.results[0].error->reply);
    EXPECT_EQ(r.results[0].error->stage, Stage::data_done);
    EXPECT_EQ(r.results[0].error->reply->code, 554);
    EXPECT_FALSE(r.results[1].error);
    ASSERT_EQ(r.results[1].recipients.size(), 1u);
    EXPECT_EQ(r.results[1].recipients[0].reply.lines.at(0), "second queued");
}

TEST_F(SmtpClientTest, DotStuffingOnTheWire) {
    std::string big;
    std::string big_stuffed;
    for (int i = 0; i < 20000; ++i) {  // ~300 KB: several 64 KB writes
        MAILWARD_GCC_WRESTRICT_OFF     // GCC bug 105651: a literal + a temporary string
        const std::string line = (i % 3 == 0 ? "." : "") + std::string("line ") + std::to_string(i) + "\r\n";
        MAILWARD_GCC_WRESTRICT_ON
        big += line;
        big_stuffed += (line[0] == '.' ? "." : "") + line;
    }
    struct Case {
        const char* name;
        std::string body, wire;
    };
    const Case cases[] = {
        {"leading dots, no final CRLF", ".hidden\r\n..two\r\nend", "..hidden\r\n...two\r\nend\r\n.\r\n"},
        {"a lone dot line", "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
        {"dot not at line start", "a.b\r\n x.\r\n", "a.b\r\n x.\r\n.\r\n"},
        {"empty body", "", "\r\n.\r\n"},
        {"large body", big, big_stuffed + ".\r\n"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        Script sc;
        sc.ehlo = {"PIPELINING"};
        FakeSmtpServer server(sc);
        auto r = talk(server, tls::Level::may, {message({"bob@example.net"}, c.body)});
        auto s = server.sessions().at(0);
        ASSERT_EQ(s.messages.size(), 1u);
        EXPECT_TRUE(s.messages[0] == c.wire) << s.messages[0].size() << " vs " << c.wire.size();
        ASSERT_EQ(r.results.size(), 1u);
        EXPECT_FALSE(r.results[0].error);
    }
}

// ---- session setup ----

TEST_F(SmtpClientTest, Greeting554) {
    Script sc;
    sc.greeting = "554 5.3.2 no service for you";
    FakeSmtpServer server(sc);
    auto r = talk(server, tls::Level::may, {message()});
    auto s = server.sessions().at(0);
    EXPECT_EQ(s.commands, (Lines{"QUIT"}));
    EXPECT_FALSE(r.connected);
    ASSERT_TRUE(r.connect_error && r.connect_error->reply);
    EXPECT_EQ(r.connect_error->stage, Stage::greeting);
    EXPECT_EQ(r.connect_error->reply->code, 554);
    EXPECT_EQ(r.connect_error->reply->enhanced, "5.3.2");
}

TEST_F(SmtpClientTest, EhloRefusedFallsBackToHelo) {
    Script sc;
    sc.ehlo_reply = "502 5.5.2 EHLO not implemented";
    FakeSmtpServer server(sc);
    Msg eight = message();
    eight.env.body_type = store::BodyType::eight_bit_mime;
    auto r = talk(server, tls::Level::may, {message(), eight});
    auto s = server.sessions().at(0);
    EXPECT_EQ(s.commands,
              (Lines{kEhlo, "HELO relay.example.test", "MAIL FROM:<alice@example.org>", kRcptBob, "DATA", "QUIT"}));
    EXPECT_TRUE(r.ehlo.empty());
    ASSERT_EQ(r.results.size(), 2u);
    EXPECT_FALSE(r.results[0].error);
    ASSERT_TRUE(r.results[1].error);  // no extensions after HELO: no 8BITMIME
    EXPECT_EQ(r.results[1].error->refusal, Refusal::no_8bitmime);
}

TEST_F(SmtpClientTest, Ehlo421IsNotRetriedWithHelo) {
    Script sc;
    sc.ehlo_reply = "421 4.3.2 closing";
    FakeSmtpServer server(sc);
    auto r = talk(server, tls::Level::may, {message()});
    EXPECT_EQ(server.sessions().at(0).commands, (Lines{kEhlo}));
    ASSERT_TRUE(r.connect_error && r.connect_error->reply);
    EXPECT_EQ(r.connect_error->stage, Stage::ehlo);
    EXPECT_EQ(r.connect_error->reply->code, 421);
}

TEST_F(SmtpClientTest, ConnectRefused) {
    unsigned short port = 0;
    {
        FakeSmtpServer closed(Script{}, 0);  // bound, then closed: nothing listens there
        port = closed.port();
    }
    Target t;
    t.mx_host = "mx.example.test";
    t.address = "127.0.0.1";
    t.port = port;
    t.helo_name = "relay.example.test";
    asio::io_context io;
    Outcome out;
    asio::co_spawn(io, drive(t, *ctx_, quick(), {}, &out), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    io.run();
    ASSERT_TRUE(out.connect_error);
    EXPECT_EQ(out.connect_error->stage, Stage::connect);
    EXPECT_EQ(out.connect_error->ec, asio::error::connection_refused);
}

TEST_F(SmtpClientTest, GreetingTimeout) {
    Script sc;
    sc.greeting_delay = std::chrono::milliseconds(1500);
    FakeSmtpServer server(sc);
    const auto start = std::chrono::steady_clock::now();
    auto r = talk(server, tls::Level::may, {message()}, quick(std::chrono::milliseconds(200)));
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1400));
    ASSERT_TRUE(r.connect_error);
    EXPECT_EQ(r.connect_error->stage, Stage::greeting);
    EXPECT_EQ(r.connect_error->ec, asio::error::timed_out);
    EXPECT_FALSE(r.connect_error->reply);
    EXPECT_TRUE(server.sessions().at(0).commands.empty());
}

TEST_F(SmtpClientTest, FinalReplyTimeout) {
    Script sc;
    sc.silent_after_data = true;
    FakeSmtpServer server(sc);
    ClientTimeouts to = quick();
    to.data_done = std::chrono::milliseconds(200);
    auto r = talk(server, tls::Level::may, {message(), message()}, to);
    ASSERT_EQ(r.results.size(), 2u);
    ASSERT_TRUE(r.results[0].error);
    EXPECT_EQ(r.results[0].error->stage, Stage::data_done);
    EXPECT_EQ(r.results[0].error->ec, asio::error::timed_out);
    EXPECT_FALSE(r.results[0].connection_usable);
    ASSERT_TRUE(r.results[1].error);  // nothing more is tried on that connection
    EXPECT_EQ(server.sessions().at(0).messages.size(), 1u);
}

// ---- STARTTLS and the levels ----

TEST_F(SmtpClientTest, EncryptWithoutStarttlsSendsNothing) {
    for (tls::Level level : {tls::Level::encrypt, tls::Level::verify, tls::Level::dane}) {
        SCOPED_TRACE(std::string(tls::to_string(level)));
        FakeSmtpServer server(Script{});
        std::vector<dns::TlsaRecord> tlsa(1);
        tlsa[0].usage = 3;
        tlsa[0].selector = 1;
        tlsa[0].matching_type = 1;
        tlsa[0].data.assign(32, 0xab);
        auto r = talk(server, level, {message()}, quick(), tlsa);
        EXPECT_EQ(server.sessions().at(0).commands, (Lines{kEhlo, "QUIT"}));
        EXPECT_FALSE(r.connected);
        ASSERT_TRUE(r.connect_error);
        EXPECT_EQ(r.connect_error->stage, Stage::tls_policy);
        EXPECT_EQ(r.connect_error->detail.rfind("STARTTLS not offered", 0), 0u) << r.connect_error->detail;
        EXPECT_EQ(r.connect_error->tls_fault, TlsFault::starttls_missing);
    }
}

TEST_F(SmtpClientTest, Starttls454) {
    Script sc;
    sc.ehlo = {"PIPELINING", "STARTTLS", "SIZE"};
    sc.starttls_reply = "454 4.7.0 TLS not available due to temporary reason";
    {
        FakeSmtpServer server(sc);
        auto r = talk(server, tls::Level::encrypt, {message()});
        EXPECT_EQ(server.sessions().at(0).commands, (Lines{kEhlo, "STARTTLS", "QUIT"}));
        ASSERT_TRUE(r.connect_error && r.connect_error->reply);
        EXPECT_EQ(r.connect_error->stage, Stage::starttls);
        EXPECT_EQ(r.connect_error->tls_fault, TlsFault::starttls_refused);
        EXPECT_EQ(r.connect_error->reply->code, 454);
    }
    {
        // may: opportunistic, the message goes on in plaintext on the same connection.
        FakeSmtpServer server(sc);
        auto r = talk(server, tls::Level::may, {message()});
        EXPECT_EQ(server.sessions().at(0).commands, (Lines{kEhlo, "STARTTLS", kMail, kRcptBob, "DATA", "QUIT"}));
        EXPECT_TRUE(r.connected);
        EXPECT_TRUE(r.starttls_offered);
        EXPECT_FALSE(r.facts.established);
    }
}

TEST_F(SmtpClientTest, DataAfterStarttlsReplyIsRefused) {
    Script sc;
    sc.ehlo = {"STARTTLS"};
    sc.starttls_then_inject = true;
    FakeSmtpServer server(sc);
    auto r = talk(server, tls::Level::may, {message()});
    EXPECT_EQ(server.sessions().at(0).commands, (Lines{kEhlo, "STARTTLS"}));
    ASSERT_TRUE(r.connect_error);
    EXPECT_EQ(r.connect_error->stage, Stage::starttls);
    EXPECT_EQ(r.connect_error->tls_fault, TlsFault::no_session);
    EXPECT_NE(r.connect_error->detail.find("injection"), std::string::npos);
}

TEST_F(SmtpClientTest, HandshakeFailure) {
    Script sc;
    sc.ehlo = {"STARTTLS", "SIZE"};
    sc.starttls_then_close = true;
    {
        FakeSmtpServer server(sc);
        auto r = talk(server, tls::Level::encrypt, {message()});
        EXPECT_EQ(server.sessions().at(0).commands, (Lines{kEhlo, "STARTTLS"}));
        ASSERT_TRUE(r.connect_error);
        EXPECT_EQ(r.connect_error->stage, Stage::tls_handshake);
        EXPECT_EQ(r.connect_error->tls_fault, TlsFault::no_session);
        EXPECT_TRUE(r.connect_error->ec);
    }
    {
        // may: a second connection in plaintext, without STARTTLS (what MTAs do for broken TLS).
        FakeSmtpServer server(sc, 2);
        auto r = talk(server, tls::Level::may, {message()});
        auto sessions = server.sessions();
        ASSERT_EQ(sessions.size(), 2u);
        EXPECT_EQ(sessions[0].commands, (Lines{kEhlo, "STARTTLS"}));
        EXPECT_EQ(sessions[1].commands, (Lines{kEhlo, kMail, kRcptBob, "DATA", "QUIT"}));
        ASSERT_TRUE(r.connected);
        ASSERT_EQ(r.results.size(), 1u);
        EXPECT_FALSE(r.results[0].error);
    }
}

struct TlsCase {
    const char* name;
    tls::Level level;
    enum Cert { ca_signed, wrong_name, self_signed } cert;
    enum Tlsa { none, leaf_spki, wrong_spki, pkix_only } tlsa;
    bool delivered;
};

TEST_F(SmtpClientTest, TlsLevels) {
    const auto good = ca_->issue({"mx.example.test"});
    const auto other = ca_->issue({"other.example.test"});
    const auto selfsigned = mailward::testing::self_signed("mx.example.test");
    const TlsCase cases[] = {
        {"verify, CA-signed", tls::Level::verify, TlsCase::ca_signed, TlsCase::none, true},
        {"verify, wrong name", tls::Level::verify, TlsCase::wrong_name, TlsCase::none, false},
        {"encrypt, wrong name", tls::Level::encrypt, TlsCase::wrong_name, TlsCase::none, true},
        {"verify, self-signed", tls::Level::verify, TlsCase::self_signed, TlsCase::none, false},
        {"encrypt, self-signed", tls::Level::encrypt, TlsCase::self_signed, TlsCase::none, true},
        {"may, self-signed", tls::Level::may, TlsCase::self_signed, TlsCase::none, true},
        {"dane 3 1 1, matching", tls::Level::dane, TlsCase::self_signed, TlsCase::leaf_spki, true},
        {"dane 3 1 1, wrong digest", tls::Level::dane, TlsCase::self_signed, TlsCase::wrong_spki, false},
        {"dane 3 1 1, wrong digest, CA-signed", tls::Level::dane, TlsCase::ca_signed, TlsCase::wrong_spki, false},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const auto& pair = c.cert == TlsCase::ca_signed ? good : c.cert == TlsCase::wrong_name ? other : selfsigned;
        auto server_ctx = mailward::testing::make_server_ctx(pair);
        Script sc;
        sc.ehlo = {"PIPELINING", "STARTTLS", "SIZE 1000"};
        sc.tls = server_ctx.get();
        std::vector<dns::TlsaRecord> tlsa;
        if (c.tlsa != TlsCase::none) {
            dns::TlsaRecord rec;
            rec.usage = 3;
            rec.selector = 1;
            rec.matching_type = 1;
            rec.data = mailward::testing::spki_sha256(pair.chain);
            if (c.tlsa == TlsCase::wrong_spki) rec.data[0] ^= 0xff;
            tlsa.push_back(rec);
        }
        FakeSmtpServer server(sc);
        auto r = talk(server, c.level, {message()}, quick(), tlsa);
        auto s = server.sessions().at(0);
        EXPECT_TRUE(s.tls);
        if (c.delivered) {
            EXPECT_EQ(s.commands, (Lines{kEhlo, "STARTTLS", "(tls) " + kEhlo, "(tls) " + kMail, "(tls) " + kRcptBob,
                                         "(tls) DATA", "(tls) QUIT"}));
            ASSERT_TRUE(r.connected);
            EXPECT_TRUE(r.facts.established);
            EXPECT_EQ(r.facts.protocol, "TLSv1.3");
            EXPECT_EQ(r.facts.spki_sha256, mailward::testing::hex(mailward::testing::spki_sha256(pair.chain)));
            EXPECT_EQ(r.facts.dane_matched, c.level == tls::Level::dane);
            ASSERT_EQ(r.results.size(), 1u);
            EXPECT_FALSE(r.results[0].error);
            EXPECT_EQ(s.messages.size(), 1u);
        } else {
            // The level is not met: QUIT over TLS, and never a MAIL.
            EXPECT_EQ(s.commands, (Lines{kEhlo, "STARTTLS", "(tls) QUIT"}));
            EXPECT_FALSE(r.connected);
            ASSERT_TRUE(r.connect_error);
            EXPECT_EQ(r.connect_error->stage, Stage::tls_policy);
            EXPECT_EQ(r.connect_error->tls_fault, TlsFault::below_level);
            EXPECT_FALSE(r.connect_error->detail.empty());
            ASSERT_TRUE(r.connect_error->tls);
            EXPECT_TRUE(r.connect_error->tls->established);
            EXPECT_TRUE(s.messages.empty());
        }
    }
}

TEST_F(SmtpClientTest, DaneWithoutUsableRecordsNeverStartsTls) {
    Script sc;
    sc.ehlo = {"STARTTLS"};
    FakeSmtpServer server(sc);
    std::vector<dns::TlsaRecord> tlsa(1);
    tlsa[0].usage = 1;  // PKIX-EE: not used for SMTP (RFC 7672 3.1.3)
    tlsa[0].selector = 1;
    tlsa[0].matching_type = 1;
    tlsa[0].data.assign(32, 0x11);
    auto r = talk(server, tls::Level::dane, {message()}, quick(), tlsa);
    EXPECT_EQ(server.sessions().at(0).commands, (Lines{kEhlo, "QUIT"}));
    ASSERT_TRUE(r.connect_error);
    EXPECT_EQ(r.connect_error->stage, Stage::tls_policy);
    EXPECT_EQ(r.connect_error->tls_fault, TlsFault::below_level);
}

TEST_F(SmtpClientTest, RequireTlsOverTls) {
    auto pair = ca_->issue({"mx.example.test"});
    auto server_ctx = mailward::testing::make_server_ctx(pair);
    Script sc;
    sc.ehlo = {"PIPELINING", "STARTTLS"};
    sc.ehlo_tls = {"PIPELINING", "REQUIRETLS", "SIZE 1000"};
    sc.tls = server_ctx.get();
    FakeSmtpServer server(sc);
    Msg m = message();
    m.env.requiretls = true;
    auto r = talk(server, tls::Level::verify, {m});
    auto s = server.sessions().at(0);
    EXPECT_EQ(s.commands.at(3), "(tls) " + kMail + " REQUIRETLS");
    EXPECT_EQ(r.ehlo, (Lines{"fake.example.test", "PIPELINING", "REQUIRETLS", "SIZE 1000"}));
    EXPECT_TRUE(r.starttls_offered);
    ASSERT_EQ(r.results.size(), 1u);
    EXPECT_FALSE(r.results[0].error);
}

TEST_F(SmtpClientTest, SilentServerAfterHandshakeTimesOut) {
    auto server_ctx = mailward::testing::make_server_ctx(mailward::testing::self_signed("mx.example.test"));
    Script sc;
    sc.ehlo = {"STARTTLS"};
    sc.tls = server_ctx.get();
    sc.silent_after_tls = true;
    FakeSmtpServer server(sc);
    ClientTimeouts to = quick();
    to.command = std::chrono::milliseconds(300);
    const auto start = std::chrono::steady_clock::now();
    auto r = talk(server, tls::Level::encrypt, {message()}, to);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    ASSERT_TRUE(r.connect_error);
    EXPECT_EQ(r.connect_error->stage, Stage::ehlo);
    EXPECT_EQ(r.connect_error->ec, asio::error::timed_out);
    ASSERT_TRUE(r.connect_error->tls);
    EXPECT_TRUE(r.connect_error->tls->established);
    EXPECT_EQ(server.sessions().at(0).commands, (Lines{kEhlo, "STARTTLS"}));
}

}  // namespace

// ---- SMTP smuggling (2023): the client never puts a bare CR or LF on the wire ----

TEST_F(SmtpClientTest, NoBareCrOrLfOnTheWire) {
    struct Case {
        const char* name;
        std::string body, wire;
    };
    const std::string smuggled = "MAIL FROM:<mallory@evil.test>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nforged\r\n";
    const Case cases[] = {
        {"<LF>.<LF>", "Subject: t\r\n\r\nhi\n.\n" + smuggled, "Subject: t\r\n\r\nhi\r\n..\r\n" + smuggled + ".\r\n"},
        {"<CR>.<CR>", "Subject: t\r\n\r\nhi\r.\r" + smuggled, "Subject: t\r\n\r\nhi\r\n..\r\n" + smuggled + ".\r\n"},
        {"<CR>.<LF>", "Subject: t\r\n\r\nhi\r.\n" + smuggled, "Subject: t\r\n\r\nhi\r\n..\r\n" + smuggled + ".\r\n"},
        {"<LF>.<CR>", "Subject: t\r\n\r\nhi\n.\r" + smuggled, "Subject: t\r\n\r\nhi\r\n..\r\n" + smuggled + ".\r\n"},
        {"<CR><LF>.<LF>", "Subject: t\r\n\r\nhi\r\n.\n" + smuggled,
         "Subject: t\r\n\r\nhi\r\n..\r\n" + smuggled + ".\r\n"},
        {"<LF>.<CR><LF>", "Subject: t\r\n\r\nhi\n.\r\n" + smuggled,
         "Subject: t\r\n\r\nhi\r\n..\r\n" + smuggled + ".\r\n"},
        {"bare LF and CR in lines", "Subject: t\r\n\r\na\nb\rc\r\n", "Subject: t\r\n\r\na\r\nb\r\nc\r\n.\r\n"},
        {"not ending in CRLF", "Subject: t\r\n\r\nlast", "Subject: t\r\n\r\nlast\r\n.\r\n"},
        {"ending in a bare LF", "Subject: t\r\n\r\nlast\n", "Subject: t\r\n\r\nlast\r\n.\r\n"},
        {"ending in <LF>.", "Subject: t\r\n\r\nlast\n.", "Subject: t\r\n\r\nlast\r\n..\r\n.\r\n"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        Script sc;
        sc.ehlo = {"PIPELINING", "SIZE 1000000"};
        FakeSmtpServer server(sc);
        auto r = talk(server, tls::Level::may, {message({"bob@example.net"}, c.body)});
        auto s = server.sessions().at(0);
        // One message, ended at our marker only; nothing after it but QUIT.
        ASSERT_EQ(s.messages.size(), 1u);
        EXPECT_EQ(s.messages[0], c.wire);
        EXPECT_EQ(s.commands.back(), "QUIT");
        EXPECT_EQ(std::count(s.commands.begin(), s.commands.end(), "DATA"), 1);
        std::string all;
        for (const auto& rd : s.reads) all += rd;
        for (std::size_t i = 0; i < all.size(); ++i) {
            if (all[i] == '\r') {
                EXPECT_TRUE(i + 1 < all.size() && all[i + 1] == '\n') << "bare CR at " << i;
            }
            if (all[i] == '\n') {
                EXPECT_TRUE(i > 0 && all[i - 1] == '\r') << "bare LF at " << i;
            }
        }
        ASSERT_EQ(r.results.size(), 1u);
        EXPECT_FALSE(r.results[0].error);
    }
}

TEST_F(SmtpClientTest, NulIsRefusedBeforeMail) {
    Script sc;
    sc.ehlo = {"PIPELINING"};
    FakeSmtpServer server(sc);
    auto r = talk(server, tls::Level::may,
                  {message({"bob@example.net"}, "Subject: t\r\n\r\na\r\n\0.\r\nb\r\n"s), message()});
    auto s = server.sessions().at(0);
    ASSERT_EQ(r.results.size(), 2u);
    ASSERT_TRUE(r.results[0].error);
    EXPECT_EQ(r.results[0].error->stage, Stage::mail);
    EXPECT_EQ(r.results[0].error->refusal, Refusal::nul_octet);
    EXPECT_FALSE(r.results[0].error->reply);
    EXPECT_TRUE(r.results[0].connection_usable);
    // Nothing of it was sent; the next message went out on the same connection.
    EXPECT_EQ(s.commands, (Lines{kEhlo, "MAIL FROM:<alice@example.org>", kRcptBob, "DATA", "QUIT"}));
    EXPECT_FALSE(r.results[1].error);
    ASSERT_EQ(s.messages.size(), 1u);
    EXPECT_EQ(s.messages[0], kBody + ".\r\n");
}

TEST(ReuseKey, DiffersWhereTheChecksDiffer) {
    Target base;
    base.mx_host = "mx.example.test";
    base.address = "127.0.0.1";
    base.port = 25;
    base.level = tls::Level::verify;
    base.helo_name = "relay.example.test";
    base.known_spki = {"aa", "bb"};
    base.tlsa = {dns::TlsaRecord{3, 1, 1, {0x01, 0x02}}};
    const std::string k = reuse_key(base, false);
    struct Case {
        const char* name;
        std::function<void(Target&)> change;
        bool requiretls;
        bool same;
    };
    const Case cases[] = {
        {"identical", [](Target&) {}, false, true},
        {"keys in another order",
         [](Target& t) {
             t.known_spki = {"bb", "aa"};
         },
         false, true},
        {"another learned key",
         [](Target& t) {
             t.known_spki = {"aa", "cc"};
         },
         false, false},
        {"no learned key", [](Target& t) { t.known_spki.clear(); }, false, false},
        {"a key more", [](Target& t) { t.known_spki.push_back("cc"); }, false, false},
        {"stricter level", [](Target& t) { t.level = tls::Level::dane; }, false, false},
        {"laxer level", [](Target& t) { t.level = tls::Level::encrypt; }, false, false},
        {"other TLSA data",
         [](Target& t) {
             t.tlsa[0].data = {0x01, 0x03};
         },
         false, false},
        {"other TLSA usage", [](Target& t) { t.tlsa[0].usage = 2; }, false, false},
        {"no TLSA", [](Target& t) { t.tlsa.clear(); }, false, false},
        {"other MX name", [](Target& t) { t.mx_host = "mx2.example.test"; }, false, false},
        {"other address", [](Target& t) { t.address = "127.0.0.2"; }, false, false},
        {"other port", [](Target& t) { t.port = 26; }, false, false},
        {"REQUIRETLS", [](Target&) {}, true, false},
    };
    for (const auto& c : cases) {
        Target t = base;
        c.change(t);
        EXPECT_EQ(reuse_key(t, c.requiretls) == k, c.same) << c.name;
    }
}
