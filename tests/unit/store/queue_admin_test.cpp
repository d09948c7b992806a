// The administrator's side of the queue (`mailward queue list|hold|release|flush`), on every backend
// (backend.hpp): the listing with pending recipients and lease state, hold (never leased, not counted
// by next_due), release (due now), flush (every waiting message not on hold due now), and their errors.
#include <gtest/gtest.h>

#include "backend.hpp"
#include "store/store.hpp"
#include "store_test_util.hpp"

using namespace mailward;
using namespace mailward::store;
using namespace mailward::store::test;
using namespace std::chrono_literals;

namespace {

StoredMessage message(std::string id, TimePoint due, std::vector<std::string> rcpts) {
    auto m = simple_message(std::move(id));
    m.envelope.recipients.clear();
    for (auto& a : rcpts) {
        Recipient r;
        r.address = std::move(a);
        r.next_attempt = due;
        m.envelope.recipients.push_back(r);
    }
    return m;
}

}  // namespace

TEST_P(QueueAdmin, ListingHasPendingRecipientsHoldAndLease) {
    ASSERT_TRUE(submit_sync(q(), message("01aaaaaaaaaaaaaaa1", t0, {"a@x.example", "b@y.example", "c@x.example"})));
    ASSERT_TRUE(submit_sync(q(), message("01aaaaaaaaaaaaaaa2", t0 + 1h, {"d@y.example"})));
    // One recipient of the first message delivered, one deferred; the lease released by the outcome.
    auto leased = q().lease_due(t0, 10, "n", 5min);
    ASSERT_TRUE(leased && leased->size() == 1);
    ASSERT_TRUE(q().complete_attempt(
        "01aaaaaaaaaaaaaaa1", "n",
        {{0, RcptState::delivered, 1, t0, "250 ok"}, {1, RcptState::queued, 1, t0 + 5min, "451 4.3.0 try later"}}));
    ASSERT_TRUE(q().hold("01aaaaaaaaaaaaaaa2"));

    auto l = q().listing(t0);
    ASSERT_TRUE(l) << l.error().message();
    ASSERT_EQ(l->size(), 2u);
    const auto& a = (*l)[0];
    EXPECT_EQ(a.envelope.id, "01aaaaaaaaaaaaaaa1");
    EXPECT_FALSE(a.envelope.held);
    EXPECT_FALSE(a.leased);
    ASSERT_EQ(a.envelope.recipients.size(), 2u);  // the delivered one is not listed
    EXPECT_EQ(a.envelope.recipients[0].address, "b@y.example");
    EXPECT_EQ(a.envelope.recipients[0].attempts, 1);
    EXPECT_EQ(a.envelope.recipients[0].last_error, "451 4.3.0 try later");
    EXPECT_EQ(a.envelope.recipients[1].address, "c@x.example");
    EXPECT_EQ((*l)[1].envelope.id, "01aaaaaaaaaaaaaaa2");
    EXPECT_TRUE((*l)[1].envelope.held);
    EXPECT_TRUE(q().envelope("01aaaaaaaaaaaaaaa2")->held);  // `queue show` sees it too

    // A live lease shows as leased until it expires.
    auto again = q().lease_due(t0 + 10min, 10, "n", 5min);
    ASSERT_TRUE(again && again->size() == 1);
    EXPECT_TRUE(q().listing(t0 + 11min)->at(0).leased);
    EXPECT_FALSE(q().listing(t0 + 16min)->at(0).leased);
}

TEST_P(QueueAdmin, HeldMessageIsNeverLeasedAndReleaseMakesItDueNow) {
    ASSERT_TRUE(submit_sync(q(), message("01bbbbbbbbbbbbbbb1", t0, {"a@x.example"})));
    ASSERT_TRUE(q().hold("01bbbbbbbbbbbbbbb1"));
    ASSERT_TRUE(q().hold("01bbbbbbbbbbbbbbb1"));  // twice is fine
    auto none = q().lease_due(t0 + 1h, 10, "n", 5min);
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());
    // next_due does not count it: the scheduler must not wake for a message it cannot lease.
    auto due = q().next_due();
    ASSERT_TRUE(due);
    EXPECT_FALSE(due->has_value());
    // retry and flush leave it on hold.
    ASSERT_TRUE(q().retry_now("01bbbbbbbbbbbbbbb1"));
    EXPECT_EQ(*q().flush(Clock::now() + 1h), 0u);
    EXPECT_TRUE(q().lease_due(Clock::now() + 2h, 10, "n", 5min)->empty());

    ASSERT_TRUE(q().release("01bbbbbbbbbbbbbbb1"));
    EXPECT_FALSE(q().envelope("01bbbbbbbbbbbbbbb1")->held);
    auto after = q().next_due();
    ASSERT_TRUE(after && after->has_value());
    EXPECT_LE(**after, Clock::now());
    auto leased = q().lease_due(Clock::now(), 10, "n", 5min);
    ASSERT_TRUE(leased);
    ASSERT_EQ(leased->size(), 1u);
    EXPECT_EQ((*leased)[0].id, "01bbbbbbbbbbbbbbb1");
}

TEST_P(QueueAdmin, HoldAndReleaseErrors) {
    struct Case {
        const char* what;
        std::function<Result<void>(QueueStore&)> op;
        common::Errc want;
    };
    ASSERT_TRUE(submit_sync(q(), message("01ccccccccccccccc1", t0, {"a@x.example"})));
    ASSERT_TRUE(submit_sync(q(), message("01ccccccccccccccc2", t0, {"a@x.example"})));
    ASSERT_TRUE(q().remove("01ccccccccccccccc2"));  // nothing pending any more
    const Case cases[] = {
        {"hold unknown", [](QueueStore& s) { return s.hold("01zzzzzzzzzzzzzzz9"); }, common::Errc::not_found},
        {"release unknown", [](QueueStore& s) { return s.release("01zzzzzzzzzzzzzzz9"); }, common::Errc::not_found},
        {"release not held", [](QueueStore& s) { return s.release("01ccccccccccccccc1"); },
         common::Errc::invalid_argument},
        {"hold with nothing pending", [](QueueStore& s) { return s.hold("01ccccccccccccccc2"); },
         common::Errc::invalid_argument},
    };
    for (const auto& c : cases) {
        auto r = c.op(q());
        ASSERT_FALSE(r) << c.what;
        EXPECT_EQ(r.error(), c.want) << c.what;
    }
}

TEST_P(QueueAdmin, FlushMakesWaitingMessagesDueExceptHeldOnes) {
    const auto now = t0 + 1min;
    ASSERT_TRUE(submit_sync(q(), message("01ddddddddddddddd1", t0 + 1h, {"a@x.example", "b@x.example"})));
    ASSERT_TRUE(submit_sync(q(), message("01ddddddddddddddd2", t0 + 2h, {"a@x.example"})));
    ASSERT_TRUE(submit_sync(q(), message("01ddddddddddddddd3", t0, {"a@x.example"})));  // due already
    ASSERT_TRUE(submit_sync(q(), message("01ddddddddddddddd4", t0 + 1h, {"a@x.example"})));
    ASSERT_TRUE(q().hold("01ddddddddddddddd4"));
    EXPECT_EQ(q().lease_due(now, 10, "n", 5min)->size(), 1u);  // only ...3
    ASSERT_TRUE(q().release_leases("n"));

    auto n = q().flush(now);
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(*n, 2u);  // 1 and 2 were waiting; 3 was due; 4 is held
    auto leased = q().lease_due(now, 10, "n", 5min);
    ASSERT_TRUE(leased);
    std::vector<std::string> ids;
    for (const auto& e : *leased) ids.push_back(e.id);
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(ids, (std::vector<std::string>{"01ddddddddddddddd1", "01ddddddddddddddd2", "01ddddddddddddddd3"}));
    for (const auto& e : *leased)
        for (const auto& r : e.recipients) EXPECT_LE(r.next_attempt, now) << e.id;
}

TEST_P(QueueAdmin, ReleaseAloneMakesAFutureAttemptDueNow) {
    const auto later = Clock::now() + 10min;  // a deferred message's next retry
    ASSERT_TRUE(submit_sync(q(), message("01eeeeeeeeeeeeeee1", later, {"a@x.example", "b@x.example"})));
    ASSERT_TRUE(q().hold("01eeeeeeeeeeeeeee1"));
    const auto before = Clock::now();
    ASSERT_TRUE(q().release("01eeeeeeeeeeeeeee1"));
    auto env = q().envelope("01eeeeeeeeeeeeeee1");
    ASSERT_TRUE(env);
    for (const auto& r : env->recipients) {
        EXPECT_GE(r.next_attempt, before - 1s) << r.address;  // stored in milliseconds
        EXPECT_LE(r.next_attempt, Clock::now()) << r.address;
    }
    auto leased = q().lease_due(Clock::now(), 10, "n", 5min);
    ASSERT_TRUE(leased);
    EXPECT_EQ(leased->size(), 1u);
}
