// The scheduler's side of the queue, on every backend (backend.hpp): leases (exclusive until they
// expire, renewed by their owner, released by complete_attempt or release_leases), attempt outcomes (only queued
// recipients change, an administrator's delete wins), next_due, and the body dropped once nothing is pending.
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>

#include "backend.hpp"
#include "common/gcc_wrestrict.hpp"
#include "store/store.hpp"
#include "store_test_util.hpp"

using namespace mailward;
using namespace mailward::store;
using namespace mailward::store::test;
using namespace std::chrono_literals;

namespace {

StoredMessage due_message(std::string id, TimePoint due, int rcpts = 1) {
    auto m = simple_message(std::move(id));
    m.envelope.recipients.clear();
    for (int i = 0; i < rcpts; ++i) {
        Recipient r;
        MAILWARD_GCC_WRESTRICT_OFF  // GCC bug 105651: "r" + a temporary string
        r.address = "r" + std::to_string(i) + "@example.org";
        MAILWARD_GCC_WRESTRICT_ON
        r.next_attempt = due;
        m.envelope.recipients.push_back(r);
    }
    return m;
}

}  // namespace

TEST_P(DeliveryStore, LeaseTakesOnlyDueUnleasedMessages) {
    const auto t0 = ms(1'800'000'000'000);
    ASSERT_TRUE(submit_sync(st->queue(), due_message("01aaaaaaaaaaaaaaa1", t0)));
    ASSERT_TRUE(submit_sync(st->queue(), due_message("01aaaaaaaaaaaaaaa2", t0 + 10min)));
    auto a = st->queue().lease_due(t0, 10, "node-a", 5min);
    ASSERT_TRUE(a);
    ASSERT_EQ(a->size(), 1u);
    EXPECT_EQ((*a)[0].id, "01aaaaaaaaaaaaaaa1");
    // Another node sees nothing while the lease lives...
    auto b = st->queue().lease_due(t0 + 1min, 10, "node-b", 5min);
    ASSERT_TRUE(b);
    EXPECT_TRUE(b->empty());
    // ...and takes it over once the lease has expired (node-a died): at least once, never lost.
    auto c = st->queue().lease_due(t0 + 6min, 10, "node-b", 5min);
    ASSERT_TRUE(c);
    ASSERT_EQ(c->size(), 1u);
    EXPECT_EQ((*c)[0].id, "01aaaaaaaaaaaaaaa1");
}

TEST_P(DeliveryStore, RenewedLeasesOutliveTheirFirstExpiryAndOnlyTheirOwnersRenew) {
    const auto t0 = ms(1'800'000'000'000);
    const std::string id = "01aaaaaaaaaaaaaab1", other = "01aaaaaaaaaaaaaab2";
    ASSERT_TRUE(submit_sync(st->queue(), due_message(id, t0)));
    auto a = st->queue().lease_due(t0, 10, "node-a", 5min);
    ASSERT_TRUE(a && a->size() == 1);
    // Nothing to renew, an id not leased, another owner's name: nothing changes.
    EXPECT_EQ(st->queue().renew_leases("node-a", {}, t0 + 20min).value(), 0u);
    EXPECT_EQ(st->queue().renew_leases("node-a", {other}, t0 + 20min).value(), 0u);
    EXPECT_EQ(st->queue().renew_leases("node-b", {id}, t0 + 20min).value(), 0u);
    auto b = st->queue().lease_due(t0 + 6min, 10, "node-b", 5min);  // expired: node-b's renew did nothing
    ASSERT_TRUE(b && b->size() == 1);
    // node-b renews its live lease: past the first expiry, nobody else may take the message.
    EXPECT_EQ(st->queue().renew_leases("node-b", {id, other}, t0 + 30min).value(), 1u);
    auto c = st->queue().lease_due(t0 + 12min, 10, "node-c", 5min);
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->empty());
    // node-a, whose lease was taken over, cannot revive it.
    EXPECT_EQ(st->queue().renew_leases("node-a", {id}, t0 + 60min).value(), 0u);
    auto d = st->queue().lease_due(t0 + 31min, 10, "node-c", 5min);
    ASSERT_TRUE(d);
    ASSERT_EQ(d->size(), 1u);
    EXPECT_EQ((*d)[0].id, id);
}

TEST_P(DeliveryStore, CompleteAttemptAppliesOutcomesAndReleases) {
    const auto t0 = ms(1'800'000'000'000);
    ASSERT_TRUE(submit_sync(st->queue(), due_message("01bbbbbbbbbbbbbbb1", t0, 3)));
    auto leased = st->queue().lease_due(t0, 10, "n", 5min);
    ASSERT_TRUE(leased && leased->size() == 1);
    std::vector<QueueStore::RecipientUpdate> ups = {
        {0, RcptState::delivered, 1, t0, "250 2.0.0 ok"},
        {1, RcptState::queued, 1, t0 + 1min, "451 4.3.0 try later"},
        {2, RcptState::failed, 1, t0, "550 5.1.1 no such user"},
    };
    ASSERT_TRUE(st->queue().complete_attempt("01bbbbbbbbbbbbbbb1", "n", ups));
    auto env = st->queue().envelope("01bbbbbbbbbbbbbbb1");
    ASSERT_TRUE(env);
    struct Want {
        RcptState state;
        int attempts;
        const char* err;
    };
    const Want want[] = {{RcptState::delivered, 1, "250 2.0.0 ok"},
                         {RcptState::queued, 1, "451 4.3.0 try later"},
                         {RcptState::failed, 1, "550 5.1.1 no such user"}};
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(env->recipients[i].state, want[i].state) << i;
        EXPECT_EQ(env->recipients[i].attempts, want[i].attempts) << i;
        EXPECT_EQ(env->recipients[i].last_error, want[i].err) << i;
    }
    auto due = st->queue().next_due();
    ASSERT_TRUE(due && due->has_value());
    EXPECT_EQ(**due, t0 + 1min);
    // Released: due again at t0+1min for anyone.
    auto again = st->queue().lease_due(t0 + 1min, 10, "other", 5min);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->size(), 1u);
    // The body stays while a recipient is pending.
    EXPECT_TRUE(st->queue().body("01bbbbbbbbbbbbbbb1"));
}

TEST_P(DeliveryStore, DelayWarnedIsKeptPerRecipientAcrossAttempts) {
    const auto t0 = ms(1'800'000'000'000);
    ASSERT_TRUE(submit_sync(st->queue(), due_message("01bbbbbbbbbbbbbbd1", t0, 2)));
    auto leased = st->queue().lease_due(t0, 10, "n", 5min);
    ASSERT_TRUE(leased && leased->size() == 1);
    EXPECT_FALSE((*leased)[0].recipients[0].delay_warned) << "a new message has warned nobody";
    QueueStore::RecipientUpdate warned{0, RcptState::queued, 1, t0, "451 4.3.0 later"};
    warned.delay_warned = true;
    ASSERT_TRUE(st->queue().complete_attempt("01bbbbbbbbbbbbbbd1", "n",
                                             {warned, {1, RcptState::queued, 1, t0, "451 4.3.0 later"}}));
    auto again = st->queue().lease_due(t0, 10, "n", 5min);
    ASSERT_TRUE(again && again->size() == 1);
    EXPECT_TRUE((*again)[0].recipients[0].delay_warned);
    EXPECT_FALSE((*again)[0].recipients[1].delay_warned);
    auto env = st->queue().envelope("01bbbbbbbbbbbbbbd1");
    ASSERT_TRUE(env);
    EXPECT_TRUE(env->recipients[0].delay_warned);
}

TEST_P(DeliveryStore, BodyIsDroppedWhenNothingIsPendingAndDeleteWins) {
    const auto t0 = ms(1'800'000'000'000);
    ASSERT_TRUE(submit_sync(st->queue(), due_message("01ccccccccccccccc1", t0, 2)));
    ASSERT_TRUE(st->queue().lease_due(t0, 10, "n", 5min));
    ASSERT_TRUE(st->queue().remove("01ccccccccccccccc1"));  // the admin deletes during the attempt
    std::vector<QueueStore::RecipientUpdate> ups = {{0, RcptState::queued, 1, t0 + 1min, "451 later"},
                                                    {1, RcptState::delivered, 1, t0, "250 ok"}};
    ASSERT_TRUE(st->queue().complete_attempt("01ccccccccccccccc1", "n", ups));
    auto env = st->queue().envelope("01ccccccccccccccc1");
    ASSERT_TRUE(env);
    EXPECT_EQ(env->recipients[0].state, RcptState::deleted);
    EXPECT_EQ(env->recipients[1].state, RcptState::deleted);
    EXPECT_FALSE(st->queue().body("01ccccccccccccccc1"));
    auto due = st->queue().next_due();
    ASSERT_TRUE(due);
    EXPECT_FALSE(due->has_value());
}

TEST_P(DeliveryStore, ReleaseLeasesOfANodeAfterRestart) {
    const auto t0 = ms(1'800'000'000'000);
    ASSERT_TRUE(submit_sync(st->queue(), due_message("01ddddddddddddddd1", t0)));
    ASSERT_TRUE(submit_sync(st->queue(), due_message("01ddddddddddddddd2", t0)));
    auto a = st->queue().lease_due(t0, 1, "crashed-node", 1h);
    auto b = st->queue().lease_due(t0, 1, "other-node", 1h);
    ASSERT_TRUE(a && b && a->size() == 1 && b->size() == 1);
    auto n = st->queue().release_leases("crashed-node");
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 1u);
    auto c = st->queue().lease_due(t0, 10, "crashed-node", 1h);
    ASSERT_TRUE(c);
    ASSERT_EQ(c->size(), 1u);
    EXPECT_EQ((*c)[0].id, (*a)[0].id);
}

// The asynchronous form goes through the group-commit writer: every outcome is durable when its
// callback runs, and many of them share commits with each other and with submissions.
TEST_P(DeliveryStore, AsyncCompletionsAreDurableAndShareCommits) {
    const auto t0 = ms(1'800'000'000'000);
    constexpr int kMessages = 200;
    for (int i = 0; i < kMessages; ++i) {
        char id[19];
        std::snprintf(id, sizeof id, "01dddddddddddd%04d", i);
        ASSERT_TRUE(submit_sync(st->queue(), due_message(id, t0)));
    }
    auto leased = st->queue().lease_due(t0, kMessages, "n", 5min);
    ASSERT_TRUE(leased);
    ASSERT_EQ(leased->size(), static_cast<std::size_t>(kMessages));
    const auto commits_before = st->commits();

    std::mutex mu;
    std::condition_variable cv;
    int done = 0, failed = 0;
    for (const auto& env : *leased) {
        st->queue().complete_attempt_async(env.id, "n", {{0, RcptState::delivered, 1, t0, "250 ok"}},
                                           [&](Result<void> r) {
                                               std::lock_guard lk(mu);
                                               ++done;
                                               if (!r) ++failed;
                                               cv.notify_one();
                                           });
    }
    {
        std::unique_lock lk(mu);
        ASSERT_TRUE(cv.wait_for(lk, 30s, [&] { return done == kMessages; }));
    }
    EXPECT_EQ(failed, 0);
    // Fewer commits than completions: they were batched (the writer took what was queued).
    EXPECT_LT(st->commits() - commits_before, static_cast<std::uint64_t>(kMessages));
    for (const auto& env : *leased) {
        auto e = st->queue().envelope(env.id);
        ASSERT_TRUE(e);
        EXPECT_EQ(e->recipients[0].state, RcptState::delivered) << env.id;
    }
    auto due = st->queue().next_due();
    ASSERT_TRUE(due);
    EXPECT_FALSE(due->has_value());
}

TEST_P(DeliveryStore, AsyncCompletionAfterCloseIsRefusedNotLost) {
    const auto t0 = ms(1'800'000'000'000);
    ASSERT_TRUE(submit_sync(st->queue(), due_message("01eeeeeeeeeeeeeee1", t0)));
    ASSERT_TRUE(st->queue().lease_due(t0, 10, "n", 5min));
    st->close();
    std::optional<Result<void>> got;
    st->queue().complete_attempt_async("01eeeeeeeeeeeeeee1", "n", {{0, RcptState::delivered, 1, t0, "250 ok"}},
                                       [&](Result<void> r) { got = r; });
    ASSERT_TRUE(got.has_value());
    EXPECT_FALSE(*got);  // the caller learns it was not recorded; the lease expires and it is retried
}
