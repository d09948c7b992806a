// The escrow service over a real SQLite store with a master key from bytes and a clock the test
// moves: sealing queues a notice without content and removes the plaintext; the link, code and
// session rules (send limit, single use, idle and absolute session limits); revocation and expiry
// destroy the key so the message can no longer be read; purge; and the audit chain verifies.
#include "escrow/service.hpp"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <future>
#include <regex>

#include "config/config.hpp"
#include "escrow/seal.hpp"
#include "escrow_fixture.hpp"
#include "message/view.hpp"

using namespace mailward;
using namespace std::chrono_literals;

namespace {

const escrow::TimePoint t0{std::chrono::milliseconds(1'800'000'000'000)};
const std::string kBody =
    "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: secret plans SECRET42\r\n"
    "Message-ID: <orig@example.org>\r\n\r\nThe body SECRET42\r\n";

struct ServiceTest : escrow::test::EscrowFixture {
    void SetUp() override {
        EscrowFixture::SetUp();
        settings.portal_url = "https://portal.example.test:8443/";
        start();
    }

    // Queues kBody for bob awaiting escrow and seals it; returns (escrow id, link token, notice).
    std::tuple<std::string, std::string, std::string> seal_one() {
        const std::string qid = queue_awaiting(kBody);
        auto sealed = svc->seal_pending(t0);
        EXPECT_TRUE(sealed && *sealed == 1u);
        auto env = st->queue().envelope(qid);
        EXPECT_EQ(env->recipients[0].state, store::RcptState::escrowed);
        EXPECT_FALSE(st->queue().body(qid)) << "the queued plaintext is gone";
        auto list = st->escrow().list(false);
        std::string id;
        for (const auto& rec : *list)
            if (rec.queue_id == qid) id = rec.id;
        // The notice is the newest queued message to bob.
        std::string notice;
        for (const auto& e : *st->queue().list()) {
            auto b = st->queue().body(e.id);
            if (b && b->find("A secure message is waiting") != std::string::npos) notice = *b;
        }
        std::smatch mt;
        std::regex link("https://portal\\.example\\.test:8443/m/([A-Za-z0-9_-]{43})");
        std::string token = std::regex_search(notice, mt, link) ? mt[1].str() : "";
        return {id, token, notice};
    }
    // Requests a code and returns it, read from the queued code mail.
    std::string code(std::string_view token, escrow::TimePoint now) {
        auto r = svc->request_code(token, client, now);
        EXPECT_TRUE(r && *r == escrow::CodeRequest::sent);
        std::string found;
        for (const auto& e : *st->queue().list()) {
            auto b = st->queue().body(e.id);
            std::smatch mt;
            std::regex re("one-time code is: (\\d{6})");
            if (b && std::regex_search(*b, mt, re)) found = mt[1].str();
            if (b && b->find("one-time code") != std::string::npos) (void)st->queue().remove(e.id);
        }
        return found;
    }
};

TEST_F(ServiceTest, SealingQueuesANoticeWithoutContent) {
    auto [id, token, notice] = seal_one();
    ASSERT_EQ(id.size(), 16u);
    ASSERT_EQ(token.size(), 43u) << notice;
    EXPECT_EQ(notice.find("SECRET42"), std::string::npos);
    EXPECT_EQ(notice.find("secret plans"), std::string::npos);
    EXPECT_NE(notice.find("Alice"), std::string::npos);
    auto rec = st->escrow().get(id);
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->sealed.find("SECRET42"), std::string::npos) << "stored encrypted";
    EXPECT_EQ(rec->token_hash.find(token), std::string::npos) << "the token itself is not stored";
    EXPECT_EQ(rec->expires, t0 + escrow::ServiceSettings{}.expiry);
    EXPECT_EQ(rec->message_id, "orig@example.org");
    EXPECT_EQ(svc->seal_pending(t0).value(), 0u) << "nothing left to seal";
}

TEST_F(ServiceTest, CodesSessionsAndReading) {
    auto [id, token, notice] = seal_one();
    auto info = svc->open_link(token, client, t0);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->escrow_id, id);
    EXPECT_EQ(svc->open_link(std::string(43, 'A'), client, t0).error(), common::Errc::not_found);
    EXPECT_EQ(svc->request_code(std::string(43, 'A'), client, t0).value(), escrow::CodeRequest::unavailable);

    // The send limit: 3 codes per 10 minutes.
    std::string c1 = code(token, t0);
    code(token, t0 + 1min);
    std::string c3 = code(token, t0 + 2min);
    EXPECT_EQ(svc->request_code(token, client, t0 + 3min).value(), escrow::CodeRequest::limited);
    ASSERT_EQ(c3.size(), 6u);
    auto old = svc->login(token, c1 == c3 ? "000000" : c1, client, t0 + 3min);
    ASSERT_TRUE(old);
    EXPECT_NE(old->check, store::CodeCheck::accepted) << "only the newest code counts";
    auto ok = svc->login(token, c3.substr(0, 3) + " " + c3.substr(3), client, t0 + 3min);
    ASSERT_TRUE(ok);
    ASSERT_EQ(ok->check, store::CodeCheck::accepted);
    EXPECT_EQ(ok->session_cookie.size(), 43u);

    auto s = svc->session(ok->session_cookie, t0 + 10min);
    ASSERT_TRUE(s);
    auto raw = svc->read(*s);
    ASSERT_TRUE(raw);
    EXPECT_EQ(*raw, kBody);
    // Idle limit (15 min since last seen) and absolute limit (8 h), with touches in between.
    EXPECT_FALSE(svc->session(ok->session_cookie, t0 + 10min + 16min)) << "idle";
    auto again = svc->login(token, code(token, t0 + 30min), client, t0 + 30min);
    ASSERT_TRUE(again && again->check == store::CodeCheck::accepted);
    auto at = t0 + 30min;
    while (at < t0 + 30min + 8h - 10min) {
        at += 10min;
        ASSERT_TRUE(svc->session(again->session_cookie, at)) << "touched every 10 minutes";
    }
    EXPECT_FALSE(svc->session(again->session_cookie, t0 + 30min + 8h + 1min)) << "absolute";
    EXPECT_FALSE(svc->session("not-a-session", t0));

    auto verdict = svc->verify(id);
    ASSERT_TRUE(verdict);
    EXPECT_TRUE(verdict->intact) << verdict->problem;
}

TEST_F(ServiceTest, RevocationExpiryAndPurgeDestroyAccess) {
    auto [id, token, notice] = seal_one();
    auto ok = svc->login(token, code(token, t0), client, t0);
    ASSERT_TRUE(ok && ok->check == store::CodeCheck::accepted);
    auto s = svc->session(ok->session_cookie, t0 + 1min);
    ASSERT_TRUE(s);
    ASSERT_TRUE(svc->revoke(id, "admin test", t0 + 2min));
    EXPECT_FALSE(svc->session(ok->session_cookie, t0 + 3min)) << "revocation ends the session";
    // Even the session captured before: the key is gone, so the message cannot be opened.
    auto rec = st->escrow().get(id);
    ASSERT_TRUE(rec);
    EXPECT_TRUE(rec->wrapped_key.empty());
    escrow::SessionInfo stale{s->id_hash, s->csrf, *rec, {}};
    auto read = svc->read(stale);
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error(), escrow::EscrowErrc::key_destroyed);
    EXPECT_EQ(svc->request_code(token, client, t0 + 4min).value(), escrow::CodeRequest::unavailable);

    // Another message expires at its time; both are purged purge_after later.
    auto [id2, token2, notice2] = seal_one();
    const auto expiry = escrow::ServiceSettings{}.expiry;
    const auto purge_after = escrow::ServiceSettings{}.purge_after;
    EXPECT_EQ(svc->sweep(t0 + 2min + purge_after).value(), 0u) << "purge_after is exclusive";
    EXPECT_EQ(svc->sweep(t0 + 2min + purge_after + 1s).value(), 1u) << "the revoked one is purged";
    EXPECT_EQ(st->escrow().get(id)->state, store::EscrowState::purged);
    EXPECT_EQ(st->escrow().get(id2)->state, store::EscrowState::active);
    EXPECT_EQ(svc->sweep(t0 + expiry - 1s).value(), 0u);
    EXPECT_EQ(svc->sweep(t0 + expiry).value(), 1u);
    EXPECT_EQ(st->escrow().get(id2)->state, store::EscrowState::expired);
    EXPECT_TRUE(st->escrow().get(id2)->wrapped_key.empty());
    EXPECT_EQ(svc->sweep(t0 + expiry + purge_after + 1s).value(), 1u);
    for (const auto& i : {id, id2}) {
        auto r = st->escrow().get(i);
        EXPECT_EQ(r->state, store::EscrowState::purged);
        EXPECT_TRUE(r->sealed.empty());
        auto v = svc->verify(i);
        ASSERT_TRUE(v);
        EXPECT_TRUE(v->intact) << v->problem;
    }
    auto rows = st->escrow().audit(id2);
    ASSERT_TRUE(rows);
    EXPECT_EQ(rows->back().event, "purged");
    EXPECT_EQ((*rows)[rows->size() - 2].event, "expired");
}

TEST_F(ServiceTest, ReplyGoesToTheSenderUnderTheSendersMode) {
    auto [id, token, notice] = seal_one();
    auto ok = svc->login(token, code(token, t0), client, t0);
    ASSERT_TRUE(ok && ok->check == store::CodeCheck::accepted);
    auto s = svc->session(ok->session_cookie, t0 + 1min);
    ASSERT_TRUE(s);
    escrow::ReplyInput in;
    in.text = "Thanks REPLY7";
    in.attachments.push_back({"answer.txt", "text/plain", "file body", "", false});
    auto out = svc->reply(*s, in, client, t0 + 2min);
    ASSERT_TRUE(out) << out.error().message();
    const auto qid = out->queue_id;
    ASSERT_FALSE(qid.empty());
    auto env = st->queue().envelope(qid);
    ASSERT_TRUE(env);
    EXPECT_EQ(env->sender, "bob@example.net");
    EXPECT_EQ(env->recipients[0].address, "alice@example.org");
    EXPECT_EQ(env->sender_mode, "tls-or-escrow");
    auto view = message::parse_message(*st->queue().body(qid));
    ASSERT_TRUE(view);
    EXPECT_EQ(view->subject, "Re: secret plans SECRET42");
    EXPECT_NE(view->text.find("REPLY7"), std::string::npos);
    ASSERT_EQ(view->attachments.size(), 1u);
    EXPECT_EQ(view->attachments[0].data, "file body");

    in.attachments[0].data = std::string(11u << 20, 'x');
    EXPECT_EQ(svc->reply(*s, in, client, t0 + 3min).error(), common::Errc::too_large);
}

// Replies are limited per message and per session in a window (defaults 5 and 3 per hour), counted
// from the message's audit rows: a refused reply queues nothing and says when to retry.
TEST_F(ServiceTest, RepliesAreLimitedPerMessageAndSession) {
    auto [id, token, notice] = seal_one();
    // token captured by copy: clang before 16 cannot capture a structured binding.
    auto sign_in = [&, token = token](escrow::TimePoint at) {
        auto ok = svc->login(token, code(token, at), client, at);
        EXPECT_TRUE(ok && ok->check == store::CodeCheck::accepted);
        return *svc->session(ok->session_cookie, at);
    };
    auto a = sign_in(t0);
    auto b = sign_in(t0 + 1min);
    escrow::ReplyInput in;
    in.text = "hello";
    const auto queued = [&] { return st->queue().list()->size(); };
    struct Step {
        const escrow::SessionInfo* s;
        std::chrono::seconds at;
        escrow::ReplyVerdict want;
        std::chrono::seconds retry_after;
    } steps[] = {
        {&a, 120s, escrow::ReplyVerdict::allowed, 0s},
        {&a, 130s, escrow::ReplyVerdict::allowed, 0s},
        {&a, 140s, escrow::ReplyVerdict::allowed, 0s},
        {&a, 150s, escrow::ReplyVerdict::too_many, 3600s - 30s},  // the session's 3
        {&b, 160s, escrow::ReplyVerdict::allowed, 0s},
        {&b, 170s, escrow::ReplyVerdict::allowed, 0s},
        {&b, 180s, escrow::ReplyVerdict::too_many, 3600s - 60s},  // the message's 5
        {&b, 120s + 3600s, escrow::ReplyVerdict::allowed, 0s},    // the first left the window
    };
    for (const auto& step : steps) {
        const auto before = queued();
        auto now = t0 + step.at;
        auto out = svc->reply(*step.s, in, client, now);
        ASSERT_TRUE(out) << out.error().message();
        EXPECT_EQ(out->limit.verdict, step.want) << step.at.count();
        EXPECT_EQ(out->limit.retry_after, step.retry_after) << step.at.count();
        EXPECT_EQ(queued(), before + (step.want == escrow::ReplyVerdict::allowed ? 1 : 0)) << step.at.count();
        EXPECT_EQ(out->queue_id.empty(), step.want != escrow::ReplyVerdict::allowed);
    }
    auto rows = st->escrow().audit(id);
    ASSERT_TRUE(rows);
    std::vector<std::string> sessions;
    for (const auto& e : *rows)
        if (auto r = escrow::past_reply_of(e)) {
            EXPECT_EQ(r->bytes, 5u) << e.detail;
            sessions.push_back(r->session);
        }
    const auto ta = escrow::session_tag(a.id_hash), tb = escrow::session_tag(b.id_hash);
    EXPECT_NE(ta, tb);
    EXPECT_EQ(sessions, (std::vector<std::string>{ta, ta, ta, tb, tb, tb}));
}

}  // namespace
