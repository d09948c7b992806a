// What every store backend does alike (backend.hpp: SQLite in store_test, PostgreSQL in
// store_pg_test): an envelope and a binary body survive a reopen byte for byte, size is the stored
// body's, invalid submissions and unknown ids get their errors, list/count/remove/retry_now, and
// the user accounts' CRUD.
#include <gtest/gtest.h>

#include <string_view>

#include "backend.hpp"
#include "store/store.hpp"
#include "store_test_util.hpp"

namespace mailward::store::test {
namespace {

TEST_P(StoreContract, FullEnvelopeAndBinaryBodySurviveReopen) {
    const auto original = full_message();
    ASSERT_TRUE(submit_sync(st->queue(), original));
    st->close();
    st.reset();
    auto s = backend->open();  // a reopen: only what was stored comes back
    ASSERT_TRUE(s);
    auto e = s->queue().envelope(original.envelope.id);
    ASSERT_TRUE(e) << e.error().message();
    const auto& o = original.envelope;
    EXPECT_EQ(e->id, o.id);
    EXPECT_EQ(e->sender, o.sender);
    EXPECT_EQ(e->body_type, o.body_type);
    EXPECT_EQ(e->smtputf8, o.smtputf8);
    EXPECT_EQ(e->requiretls, o.requiretls);
    EXPECT_EQ(e->ret, o.ret);
    EXPECT_EQ(e->envid, o.envid);
    EXPECT_EQ(e->auth_user, o.auth_user);
    EXPECT_EQ(e->client_address, o.client_address);
    EXPECT_EQ(e->client_helo, o.client_helo);
    EXPECT_EQ(e->sender_mode, o.sender_mode);
    EXPECT_EQ(e->received_at, o.received_at);
    EXPECT_EQ(e->size, original.body.size());
    ASSERT_EQ(e->recipients.size(), o.recipients.size());
    for (std::size_t i = 0; i < o.recipients.size(); ++i) {
        SCOPED_TRACE(i);
        const auto& got = e->recipients[i];
        const auto& want = o.recipients[i];
        EXPECT_EQ(got.address, want.address);
        EXPECT_EQ(got.orcpt, want.orcpt);
        EXPECT_EQ(got.notify, want.notify);
        EXPECT_EQ(got.state, want.state);
        EXPECT_EQ(got.attempts, want.attempts);
        EXPECT_EQ(got.next_attempt, want.next_attempt);
        EXPECT_EQ(got.last_error, want.last_error);
    }
    auto body = s->queue().body(o.id);
    ASSERT_TRUE(body);
    EXPECT_EQ(body->size(), original.body.size());
    EXPECT_TRUE(*body == original.body);
}

TEST_P(StoreContract, EmptyBodyIsStoredAsEmptyBlob) {
    auto* s = st.get();
    ASSERT_TRUE(submit_sync(s->queue(), simple_message("empty", "")));
    auto body = s->queue().body("empty");
    ASSERT_TRUE(body) << body.error().message();
    EXPECT_EQ(*body, "");
}

TEST_P(StoreContract, SizeIsTheStoredBodyLength) {
    auto* s = st.get();
    auto m = simple_message("sz", "12345");
    m.envelope.size = 999;
    ASSERT_TRUE(submit_sync(s->queue(), m));
    EXPECT_EQ(s->queue().envelope("sz")->size, 5u);
}

TEST_P(StoreContract, RejectsMessagesWithoutIdOrRecipients) {
    auto* s = st.get();
    auto no_rcpt = simple_message("x");
    no_rcpt.envelope.recipients.clear();
    auto r1 = submit_sync(s->queue(), no_rcpt);
    ASSERT_FALSE(r1);
    EXPECT_EQ(r1.error(), common::Errc::invalid_argument);
    auto r2 = submit_sync(s->queue(), simple_message(""));
    ASSERT_FALSE(r2);
    EXPECT_EQ(r2.error(), common::Errc::invalid_argument);
    EXPECT_EQ(*s->queue().count(), 0u);
}

TEST_P(StoreContract, UnknownIdsAreNotFound) {
    auto* s = st.get();
    auto& q = s->queue();
    EXPECT_EQ(q.envelope("nope").error(), common::Errc::not_found);
    EXPECT_EQ(q.body("nope").error(), common::Errc::not_found);
    EXPECT_EQ(q.remove("nope").error(), common::Errc::not_found);
    EXPECT_EQ(q.retry_now("nope").error(), common::Errc::not_found);
}

TEST_P(StoreContract, ListCountRemoveRetryNow) {
    auto* s = st.get();
    auto& q = s->queue();
    const auto t0 = ms(1'700'000'000'000);
    const auto future = ms(4'000'000'000'000);

    // Submitted out of order: list() orders by received_at.
    auto c = simple_message("c", "ccc", t0 + std::chrono::seconds(2));
    auto a = simple_message("a", "a", t0);
    a.envelope.recipients[0].next_attempt = future;
    Recipient a2;
    a2.address = "x@escrow.test";
    a2.state = RcptState::awaiting_escrow;
    a2.next_attempt = future + std::chrono::hours(1);
    Recipient a3;
    a3.address = "done@example.org";
    a3.state = RcptState::delivered;
    a3.next_attempt = ms(5);  // not pending: must not count as earliest
    a.envelope.recipients.push_back(a2);
    a.envelope.recipients.push_back(a3);
    auto b = simple_message("b", "bb", t0 + std::chrono::seconds(1));
    b.envelope.recipients[0].state = RcptState::delivered;  // finished: not listed
    for (auto* m : {&c, &a, &b}) ASSERT_TRUE(submit_sync(q, *m));

    auto l = q.list();
    ASSERT_TRUE(l);
    ASSERT_EQ(l->size(), 2u);
    EXPECT_EQ((*l)[0].id, "a");
    EXPECT_EQ((*l)[0].sender, "alice@example.test");
    EXPECT_EQ((*l)[0].received_at, t0);
    EXPECT_EQ((*l)[0].size, 1u);
    EXPECT_EQ((*l)[0].recipients, 3u);
    EXPECT_EQ((*l)[0].pending, 2u);
    EXPECT_EQ((*l)[0].next_attempt, future);
    EXPECT_EQ((*l)[1].id, "c");
    EXPECT_EQ((*l)[1].pending, 1u);
    EXPECT_EQ(*q.count(), 2u);

    // retry_now: queued recipients become due now; awaiting_escrow and delivered are untouched.
    const auto before = Clock::now() - std::chrono::milliseconds(1);
    ASSERT_TRUE(q.retry_now("a"));
    const auto after = Clock::now() + std::chrono::milliseconds(1);
    auto e = q.envelope("a");
    ASSERT_TRUE(e);
    EXPECT_GE(e->recipients[0].next_attempt, before);
    EXPECT_LE(e->recipients[0].next_attempt, after);
    EXPECT_EQ(e->recipients[1].next_attempt, future + std::chrono::hours(1));
    EXPECT_EQ(e->recipients[2].next_attempt, ms(5));

    // remove: pending recipients deleted, finished ones kept, body gone, envelope kept.
    ASSERT_TRUE(q.remove("a"));
    e = q.envelope("a");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->recipients[0].state, RcptState::deleted);
    EXPECT_EQ(e->recipients[1].state, RcptState::deleted);
    EXPECT_EQ(e->recipients[2].state, RcptState::delivered);
    EXPECT_EQ(q.body("a").error(), common::Errc::not_found);
    l = q.list();
    ASSERT_TRUE(l);
    ASSERT_EQ(l->size(), 1u);
    EXPECT_EQ((*l)[0].id, "c");
    EXPECT_EQ(*q.count(), 1u);
    EXPECT_TRUE(q.remove("a"));  // removing again is harmless
    EXPECT_TRUE(q.body("b"));    // others untouched
    EXPECT_TRUE(q.body("c"));
}

TEST_P(StoreContract, UserCrud) {
    auto* s = st.get();
    auto& users = s->users();
    User u{"alice@example.test", "$argon2id$v=19$m=65536,t=2,p=1$abc$def", "", ms(1'700'000'000'000)};
    ASSERT_TRUE(users.add(u));
    auto dup = users.add(User{"alice@example.test", "other", "tls-only", {}});
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error(), common::Errc::already_exists);
    ASSERT_TRUE(users.add(User{"bob@example.test", "h2", "escrow-always", {}}));

    auto got = users.get("alice@example.test");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->password_hash, u.password_hash);
    EXPECT_EQ(got->mode, "");
    EXPECT_EQ(got->created, u.created);
    auto bob = users.get("bob@example.test");
    ASSERT_TRUE(bob);
    EXPECT_GT(bob->created, ms(1'700'000'000'000));  // defaulted to now

    ASSERT_TRUE(users.update(User{"alice@example.test", "newhash", "tls-only", {}}));
    got = users.get("alice@example.test");
    EXPECT_EQ(got->password_hash, "newhash");
    EXPECT_EQ(got->mode, "tls-only");
    EXPECT_EQ(got->created, u.created);

    auto all = users.list();
    ASSERT_TRUE(all);
    ASSERT_EQ(all->size(), 2u);
    EXPECT_EQ((*all)[0].name, "alice@example.test");
    EXPECT_EQ((*all)[1].name, "bob@example.test");

    EXPECT_EQ(users.update(User{"carol@example.test", "h", "", {}}).error(), common::Errc::not_found);
    EXPECT_EQ(users.get("carol@example.test").error(), common::Errc::not_found);
    EXPECT_EQ(users.remove("carol@example.test").error(), common::Errc::not_found);
    ASSERT_TRUE(users.remove("alice@example.test"));
    EXPECT_EQ(users.get("alice@example.test").error(), common::Errc::not_found);
    EXPECT_EQ(users.list()->size(), 1u);
}

}  // namespace
}  // namespace mailward::store::test
