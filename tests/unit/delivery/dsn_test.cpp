// Notifications (RFC 3464/6522): structure, per-recipient fields, RET=HDRS, protected originals,
// delayed and relayed actions, NOTIFY rules, and never a notification to the null sender.
#include "delivery/dsn.hpp"

#include <gtest/gtest.h>

#include "common/timefmt.hpp"

using namespace mailward;
using namespace mailward::delivery;

namespace {

store::Envelope envelope() {
    store::Envelope e;
    e.id = "01m8aaaaaaaaaaaaaa";
    e.sender = "alice@example.org";
    e.envid = "env-42";
    e.sender_mode = "opportunistic";  // not protected: the whole original may come back
    for (const char* a : {"bob@example.net", "carol@example.net", "dave@example.net"}) {
        store::Recipient r;
        r.address = a;
        e.recipients.push_back(r);
    }
    e.recipients[1].orcpt = "rfc822;carol+x@example.net";
    e.recipients[2].notify = store::notify_never;
    return e;
}

const std::string kBody = "Received: from x\r\nSubject: original\r\nX-Marker: m1\r\n\r\nsecret body line\r\n";
const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));

bool has(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

}  // namespace

TEST(Dsn, StructureAndFields) {
    auto env = envelope();
    std::vector<DsnRecipient> failed = {
        {0, "5.1.1", "smtp; 550 5.1.1 no such user", "mx.example.net", "mx.example.net said: 550 5.1.1 no such user"},
        {1, "5.4.7", "", "", "gave up after 5d in the queue"},
        {2, "5.1.1", "smtp; 550 5.1.1 x", "mx.example.net", "no"},  // NOTIFY=NEVER: not reported
    };
    auto b = make_dsn(env, kBody, failed, {"relay.example.test", kNow, std::nullopt});
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->envelope.sender, "");
    ASSERT_EQ(b->envelope.recipients.size(), 1u);
    EXPECT_EQ(b->envelope.recipients[0].address, "alice@example.org");
    const std::string& t = b->body;
    const std::string must[] = {
        "Content-Type: multipart/report; report-type=delivery-status;",
        "Auto-Submitted: auto-replied\r\n",
        "Content-Type: message/delivery-status\r\n",
        "Reporting-MTA: dns; relay.example.test\r\n",
        "Original-Envelope-Id: env-42\r\n",
        "Final-Recipient: rfc822; bob@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Remote-MTA: dns; mx.example.net\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n",
        "Final-Recipient: rfc822; carol@example.net\r\nOriginal-Recipient: rfc822; carol+x@example.net\r\n",
        "Status: 5.4.7\r\n",
        "Content-Type: message/rfc822\r\n\r\n" + kBody,
        "<bob@example.net>: mx.example.net said: 550 5.1.1 no such user\r\n",
    };
    for (const auto& m : must) EXPECT_TRUE(has(t, m)) << "missing: " << m << "\n" << t;
    EXPECT_FALSE(has(t, "dave@example.net")) << t;
    // Every part boundary is closed.
    const std::string boundary = b->envelope.id + "/relay.example.test";
    EXPECT_TRUE(has(t, "\r\n--" + boundary + "--\r\n"));
}

TEST(Dsn, RetHdrsCarriesOnlyTheHeaders) {
    auto env = envelope();
    env.ret = store::DsnRet::hdrs;
    auto b = make_dsn(env, kBody, {{0, "5.1.1", "", "", "x"}}, {"relay.example.test", kNow, std::nullopt});
    ASSERT_TRUE(b.has_value());
    EXPECT_TRUE(has(b->body, "Content-Type: text/rfc822-headers\r\n\r\nReceived: from x\r\n"));
    EXPECT_TRUE(has(b->body, "X-Marker: m1"));
    EXPECT_FALSE(has(b->body, "secret body line"));
}

TEST(Dsn, NoBounceToNullSenderOrWhenNobodyAsked) {
    auto env = envelope();
    env.sender = "";
    EXPECT_FALSE(make_dsn(env, kBody, {{0, "5.1.1", "", "", "x"}}, {"h", kNow, std::nullopt}).has_value());
    env = envelope();
    EXPECT_FALSE(
        make_dsn(env, kBody, {{2, "5.1.1", "", "", "x"}}, {"h", kNow, std::nullopt}).has_value());  // NOTIFY=NEVER
    env.recipients[0].notify = store::notify_success | store::notify_delay;                         // no FAILURE
    EXPECT_FALSE(make_dsn(env, kBody, {{0, "5.1.1", "", "", "x"}}, {"h", kNow, std::nullopt}).has_value());
}

TEST(Dsn, WantsFailureTable) {
    struct Case {
        unsigned notify;
        bool null_sender;
        bool want;
    };
    const Case cases[] = {
        {0, false, true},
        {store::notify_failure, false, true},
        {store::notify_never, false, false},
        {store::notify_success, false, false},
        {store::notify_failure | store::notify_delay, false, true},
        {0, true, false},
    };
    for (const auto& c : cases) {
        store::Envelope e;
        e.sender = c.null_sender ? "" : "a@b.test";
        store::Recipient r;
        r.notify = c.notify;
        EXPECT_EQ(wants_failure_dsn(e, r), c.want) << c.notify << " " << c.null_sender;
    }
}

TEST(Dsn, ProtectedOriginalComesBackAsHeadersOnly) {
    // A sender mode that forces TLS, or REQUIRETLS: the body never leaves in a notification.
    struct Case {
        std::string mode;
        bool requiretls;
        bool whole;
    };
    const Case cases[] = {
        {"opportunistic", false, true}, {"opportunistic", true, false},  {"tls-or-escrow", false, false},
        {"tls-only", false, false},     {"escrow-always", false, false}, {"", false, false},
    };
    for (const auto& c : cases) {
        auto env = envelope();
        env.sender_mode = c.mode;
        env.requiretls = c.requiretls;
        auto b = make_dsn(env, kBody, {{0, "5.1.1", "", "", "x"}}, {"relay.example.test", kNow, std::nullopt});
        ASSERT_TRUE(b.has_value());
        EXPECT_EQ(has(b->body, "secret body line"), c.whole) << c.mode << " " << c.requiretls;
        EXPECT_TRUE(has(b->body, "X-Marker: m1")) << c.mode;
        EXPECT_EQ(has(b->body, "Content-Type: text/rfc822-headers\r\n"), !c.whole) << c.mode;
    }
}

TEST(Dsn, DelayedAndRelayedActions) {
    auto env = envelope();
    env.recipients[0].notify = 0;                      // default: FAILURE,DELAY
    env.recipients[1].notify = store::notify_success;  // SUCCESS only
    const auto until = kNow + std::chrono::hours(96);
    DsnOptions opt{"relay.example.test", kNow, until};
    auto b = make_dsn(env, kBody,
                      {{0, "4.2.0", "smtp; 450 4.2.0 busy", "mx.example.net", "mx said 450", DsnAction::delayed},
                       {1, "2.0.0", "smtp; 250 ok", "mx.example.net", "relayed", DsnAction::relayed}},
                      opt);
    ASSERT_TRUE(b.has_value());
    const std::string& t = b->body;
    EXPECT_TRUE(has(t, "Subject: Delayed Mail (still being retried)\r\n")) << t;
    EXPECT_TRUE(has(t, "Final-Recipient: rfc822; bob@example.net\r\nAction: delayed\r\nStatus: 4.2.0\r\n")) << t;
    EXPECT_TRUE(has(t, "Will-Retry-Until: " + common::rfc5322_date(until) + "\r\n")) << t;
    EXPECT_TRUE(has(t,
                    "Final-Recipient: rfc822; carol@example.net\r\nOriginal-Recipient: rfc822; carol+x@example.net"
                    "\r\nAction: relayed\r\nStatus: 2.0.0\r\n"))
        << t;
    EXPECT_TRUE(has(t, "You do not need to send it again.")) << t;

    // Nobody asked: recipient 0 wants no delay (FAILURE only), recipient 1 no success (default).
    env.recipients[0].notify = store::notify_failure;
    env.recipients[1].notify = 0;
    EXPECT_FALSE(
        make_dsn(env, kBody,
                 {{0, "4.2.0", "", "", "x", DsnAction::delayed}, {1, "2.0.0", "", "", "x", DsnAction::relayed}}, opt)
            .has_value());
    // Only relayed: the success subject.
    env.recipients[1].notify = store::notify_success | store::notify_failure;
    auto s = make_dsn(env, kBody, {{1, "2.0.0", "", "mx", "relayed", DsnAction::relayed}}, opt);
    ASSERT_TRUE(s.has_value());
    EXPECT_TRUE(has(s->body, "Subject: Successful Mail Delivery Report\r\n")) << s->body;
    EXPECT_FALSE(has(s->body, "Will-Retry-Until")) << s->body;
}

TEST(Dsn, WantsTable) {
    struct Case {
        unsigned notify;
        DsnAction action;
        bool want;
    };
    using enum DsnAction;
    const Case cases[] = {
        {0, delayed, true},
        {0, relayed, false},
        {store::notify_delay, delayed, true},
        {store::notify_failure, delayed, false},
        {store::notify_success, relayed, true},
        {store::notify_success, failed, false},
        {store::notify_never, delayed, false},
        {store::notify_success | store::notify_delay | store::notify_failure, relayed, true},
    };
    for (const auto& c : cases) {
        store::Envelope e;
        e.sender = "a@b.test";
        store::Recipient r;
        r.notify = c.notify;
        EXPECT_EQ(wants_dsn(e, r, c.action), c.want) << c.notify << " " << to_string(c.action);
        e.sender = "";
        EXPECT_FALSE(wants_dsn(e, r, c.action)) << "null sender";
    }
}
