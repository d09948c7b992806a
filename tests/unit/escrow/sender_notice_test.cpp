// The sender's escrow notice: what it says (recipient, reason, expiry, ids, the original's
// Message-ID, nothing of its subject or body), that a CR/LF in a reason cannot add a header, and that the
// service queues it only for the sender modes [escrow] notify_sender lists, from the null sender;
// read and expiry receipts (once, only for an account that asks, naming nothing of the content).
#include "escrow/sender_notice.hpp"

#include <gtest/gtest.h>

#include <future>

#include "escrow/audit.hpp"
#include "escrow_fixture.hpp"

using namespace mailward;
using namespace mailward::escrow;

namespace {

bool has(const std::string& s, const std::string& n) { return s.find(n) != std::string::npos; }

const std::string kBody =
    "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: quarterly plans\r\n"
    "Message-ID: <orig@example.org>\r\n\r\nThe body SECRET42\r\n";

struct SenderNoticeService : escrow::test::EscrowFixture {
    // Seals one message of kBody; returns the bodies queued to alice from the null sender.
    std::vector<std::string> seal_and_collect() {
        start();
        const std::string qid = queue_awaiting(kBody);
        EXPECT_TRUE(svc->seal_pending(escrow::test::kT0));
        std::vector<std::string> out;
        for (const auto& e : *st->queue().list()) {
            auto env = st->queue().envelope(e.id);
            auto b = st->queue().body(e.id);
            if (env && b && env->sender.empty() && env->recipients[0].address == "alice@example.org") {
                EXPECT_EQ(env->sender_mode, "tls-or-escrow") << "travels under the original's mode";
                EXPECT_EQ(env->ret, store::DsnRet::hdrs);
                out.push_back(*b);
            }
        }
        return out;
    }
};

}  // namespace

TEST(SenderNotice, SaysWhatHappenedWithoutTheBody) {
    SenderNoticeInput in;
    in.to = "alice@example.org";
    in.recipient = "bob@example.net";
    in.message_id = "orig@example.org";
    in.reason = "mx.example.net: STARTTLS not offered (required: encrypt)";
    in.queue_id = "01qid";
    in.escrow_id = "00112233aabbccdd";
    in.expires = escrow::test::kT0;
    in.hostname = "relay.example.test";
    auto m = compose_sender_notice(in);
    ASSERT_TRUE(m) << m.error().message();
    for (const std::string must :
         {"Subject: Your message to bob@example.net went through the secure portal", "From: Mail Delivery System",
          "MAILER-DAEMON@relay.example.test", "In-Reply-To: <orig@example.org>", "Auto-Submitted: auto-generated",
          "bob@example.net", "STARTTLS not offered", "01qid", "00112233aabbccdd", "2027-01-15 08:00 UTC",
          "Your message <orig@example.org> to bob@example.net", "You do not need to send the message again."})
        EXPECT_TRUE(has(*m, must)) << must << "\n" << *m;
}

TEST(SenderNotice, LineBreaksInRecipientOrReasonAddNoHeader) {
    SenderNoticeInput in;
    in.to = "alice@example.org";
    in.recipient = "bob@example.net\r\nBcc: eve@example.com";
    in.reason = "x\r\nX-Injected: 1";
    in.hostname = "relay.example.test";
    auto m = compose_sender_notice(in);
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_FALSE(has(*m, "\r\nBcc:")) << *m;
    EXPECT_FALSE(has(*m, "\r\nX-Injected:")) << *m;
}

TEST_F(SenderNoticeService, QueuedForAListedMode) {
    settings.notify_sender = {"tls-or-escrow"};
    auto got = seal_and_collect();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_TRUE(has(got[0], "Your message to bob@example.net went through the secure portal")) << got[0];
    EXPECT_FALSE(has(got[0], "quarterly plans")) << "nothing of the subject";
    EXPECT_TRUE(has(got[0], "bob@example.net")) << got[0];
    EXPECT_FALSE(has(got[0], "SECRET42")) << got[0];
}

TEST_F(SenderNoticeService, NoneWhenTheListIsEmpty) {
    settings.notify_sender = {};
    EXPECT_TRUE(seal_and_collect().empty());
}

TEST_F(SenderNoticeService, NoneWhenTheSendersModeIsNotListed) {
    settings.notify_sender = {"escrow-always", "tls-only"};  // the message's mode is tls-or-escrow
    EXPECT_TRUE(seal_and_collect().empty());
}

namespace {

struct ReceiptService : escrow::test::EscrowFixture {
    // Adds the account alice (receipts as given), queues kBody from her (authenticated) awaiting
    // escrow, seals it; returns the escrow id.
    std::string seal_from_account(bool receipts) {
        settings.notify_sender = {};  // only receipts in the queue
        start();
        store::User u;
        u.name = "alice";
        u.password_hash = "x";
        u.receipts = receipts;
        EXPECT_TRUE(st->users().add(u));
        store::StoredMessage m;
        m.envelope.id = "R1";
        m.envelope.sender = "alice@example.org";
        m.envelope.sender_mode = "tls-or-escrow";
        m.envelope.auth_user = "alice";
        store::Recipient r;
        r.address = "bob@example.net";
        r.state = store::RcptState::awaiting_escrow;
        m.envelope.recipients.push_back(r);
        m.body = kBody;
        std::promise<Result<void>> p;
        auto f = p.get_future();
        st->queue().submit(m, [&p](Result<void> res) { p.set_value(res); });
        EXPECT_TRUE(f.get());
        EXPECT_TRUE(svc->seal_pending(escrow::test::kT0));
        return st->escrow().list(false)->at(0).id;
    }
    void viewed(const std::string& id) {
        store::EscrowAuditEntry e;
        e.escrow_id = id;
        e.at = escrow::test::kT0;
        e.event = std::string(store::escrow_event::viewed);
        ASSERT_TRUE(st->escrow().append_audit(e, escrow::audit_chain(*keys)));
    }
    // Bodies queued from the null sender to alice containing needle.
    std::size_t queued(const std::string& needle) {
        std::size_t n = 0;
        for (const auto& e : *st->queue().list()) {
            auto env = st->queue().envelope(e.id);
            auto b = st->queue().body(e.id);
            if (env && b && env->sender.empty() && env->recipients[0].address == "alice@example.org" &&
                b->find(needle) != std::string::npos)
                ++n;
        }
        return n;
    }
};

}  // namespace

TEST_F(ReceiptService, ReadReceiptOnceThenExpiryReceiptSaysItWasRead) {
    const auto id = seal_from_account(true);
    EXPECT_TRUE(st->escrow().get(id)->receipts) << "taken from the account at the seal";
    ASSERT_TRUE(svc->sweep(escrow::test::kT0));
    EXPECT_EQ(queued("Read: your secure message"), 0u) << "not opened yet";
    viewed(id);
    ASSERT_TRUE(svc->sweep(escrow::test::kT0 + std::chrono::minutes(1)));
    ASSERT_TRUE(svc->sweep(escrow::test::kT0 + std::chrono::minutes(2)));
    EXPECT_EQ(queued("Read: your secure message to bob@example.net"), 1u) << "once";
    EXPECT_EQ(queued("quarterly plans"), 0u) << "nothing of the subject";
    ASSERT_TRUE(svc->sweep(escrow::test::kT0 + settings.expiry + std::chrono::seconds(1)));
    EXPECT_EQ(queued("Expired: your secure message to bob@example.net"), 1u);
    EXPECT_EQ(queued("The recipient had opened it before."), 1u);
}

TEST_F(ReceiptService, ExpiryReceiptSaysItWasNeverOpened) {
    seal_from_account(true);
    ASSERT_TRUE(svc->sweep(escrow::test::kT0 + settings.expiry + std::chrono::seconds(1)));
    EXPECT_EQ(queued("The recipient never opened it"), 1u);
}

TEST_F(ReceiptService, NoReceiptsUnlessTheAccountAsks) {
    const auto id = seal_from_account(false);
    EXPECT_FALSE(st->escrow().get(id)->receipts);
    viewed(id);
    ASSERT_TRUE(svc->sweep(escrow::test::kT0 + std::chrono::minutes(1)));
    ASSERT_TRUE(svc->sweep(escrow::test::kT0 + settings.expiry + std::chrono::seconds(1)));
    EXPECT_EQ(queued("your secure message"), 0u);
}
