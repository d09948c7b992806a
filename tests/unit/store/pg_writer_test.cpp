// The PostgreSQL group-commit writer's batches, whatever statements it sends (one per row today; a
// one-statement insert was tried, bench/RESULTS.md session 7): every field and every recipient of a
// message comes back as written and in order, up to 2500 recipients (past 1000, where a statement
// with one row per recipient would have to be split); duplicate ids anywhere in a batch fail alone
// with already_exists while the rest is stored whole in one COMMIT.
#include <gtest/gtest.h>

#include <future>

#include "pg_test_util.hpp"
#include "store/postgres/pg_store.hpp"
#include "store_test_util.hpp"

using namespace mailward;
using namespace mailward::store;
using namespace mailward::store::test;
using namespace std::chrono_literals;

namespace {

struct PgWriterTest : PgTest {
    std::unique_ptr<postgres::PgStore> s;
    void SetUp() override {
        PgTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        postgres::Options opts;
        opts.commit_interval = 200ms;  // the submissions of a test share one batch
        s = node(std::move(opts));
        ASSERT_TRUE(s);
    }
};

// n recipients whose text holds what a VALUES list or an array literal would trip over.
StoredMessage many_recipients(std::string id, std::size_t n) {
    auto m = full_message();
    m.envelope.id = std::move(id);
    m.envelope.recipients.clear();
    const char* odd[] = {"\"quoted, local\"@example.org",
                         "back\\slash@example.org",
                         "{brace}@example.org",
                         "用户@例子.测试",
                         "NULL@example.org",
                         "o'hare@example.org",
                         "Postmaster"};
    for (std::size_t i = 0; i < n; ++i) {
        Recipient r;
        r.address =
            i < std::size(odd) ? std::string(odd[i]) : "r" + std::to_string(i) + "@d" + std::to_string(i % 7) + ".test";
        r.orcpt = i % 3 == 0 ? "" : "rfc822;" + r.address;
        r.notify = static_cast<unsigned>(i % 16);
        r.state = i % 2 ? RcptState::queued : RcptState::awaiting_escrow;
        r.attempts = static_cast<int>(i % 5);
        r.next_attempt = ms(1'800'000'000'000 + static_cast<std::int64_t>(i));
        r.last_error = i % 4 == 0 ? "" : "451 4.7.0 \"try\" again, {later}\\" + std::to_string(i);
        m.envelope.recipients.push_back(r);
    }
    return m;
}

void expect_same(const Envelope& got, const Envelope& want) {
    EXPECT_EQ(got.id, want.id);
    EXPECT_EQ(got.sender, want.sender);
    EXPECT_EQ(got.body_type, want.body_type);
    EXPECT_EQ(got.smtputf8, want.smtputf8);
    EXPECT_EQ(got.requiretls, want.requiretls);
    EXPECT_EQ(got.ret, want.ret);
    EXPECT_EQ(got.envid, want.envid);
    EXPECT_EQ(got.auth_user, want.auth_user);
    EXPECT_EQ(got.client_address, want.client_address);
    EXPECT_EQ(got.client_helo, want.client_helo);
    EXPECT_EQ(got.sender_mode, want.sender_mode);
    EXPECT_EQ(got.received_at, want.received_at);
    ASSERT_EQ(got.recipients.size(), want.recipients.size());
    for (std::size_t i = 0; i < want.recipients.size(); ++i) {
        SCOPED_TRACE(i);
        const auto &g = got.recipients[i], &w = want.recipients[i];
        EXPECT_EQ(g.address, w.address);
        EXPECT_EQ(g.orcpt, w.orcpt);
        EXPECT_EQ(g.notify, w.notify);
        EXPECT_EQ(g.state, w.state);
        EXPECT_EQ(g.attempts, w.attempts);
        EXPECT_EQ(g.next_attempt, w.next_attempt);
        EXPECT_EQ(g.last_error, w.last_error);
        if (::testing::Test::HasFailure()) return;  // one recipient's report, not 2500
    }
}

}  // namespace

TEST_F(PgWriterTest, EveryRecipientComesBackAcrossTheStatementBoundaries) {
    struct Case {
        const char* id;
        std::size_t recipients;
    };
    const Case cases[] = {{"01pgwrite000000001", 1},
                          {"01pgwrite000000007", 7},
                          {"01pgwrite000001000", 1000},
                          {"01pgwrite000001001", 1001},
                          {"01pgwrite000002500", 2500}};
    for (const auto& c : cases) {
        SCOPED_TRACE(c.id);
        auto m = many_recipients(c.id, c.recipients);
        ASSERT_TRUE(submit_sync(s->queue(), m));
        auto got = s->queue().envelope(c.id);
        ASSERT_TRUE(got) << got.error().message();
        expect_same(*got, m.envelope);
        EXPECT_EQ(*s->queue().body(c.id), m.body);
        EXPECT_EQ(db->query("SELECT count(*) FROM recipients WHERE message_id = $1", {c.id}).value_or(""),
                  std::to_string(c.recipients));
        EXPECT_EQ(db->query("SELECT max(idx) FROM recipients WHERE message_id = $1", {c.id}).value_or(""),
                  std::to_string(c.recipients - 1));
    }
}

// One batch: duplicates first, in the middle, twice in a row and last; each fails alone with
// already_exists, every other message is stored whole (its recipients too), in one COMMIT.
TEST_F(PgWriterTest, DuplicatesAnywhereInABatchFailAlone) {
    ASSERT_TRUE(submit_sync(s->queue(), many_recipients("01pgwritedup000000", 3)));
    const auto commits0 = s->stats().commits;
    struct Case {
        std::string id;
        bool stored;
    };
    const std::vector<Case> batch = {{"01pgwritedup000000", false}, {"01pgwritenew000001", true},
                                     {"01pgwritenew000001", false}, {"01pgwritenew000001", false},
                                     {"01pgwritenew000002", true},  {"01pgwritedup000000", false}};
    std::vector<std::promise<Result<void>>> done(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i)
        s->queue().submit(many_recipients(batch[i].id, 1200), [&done, i](Result<void> r) { done[i].set_value(r); });
    for (std::size_t i = 0; i < batch.size(); ++i) {
        SCOPED_TRACE(i);
        auto r = done[i].get_future().get();
        if (batch[i].stored) {
            EXPECT_TRUE(r) << r.error().message();
        } else {
            ASSERT_FALSE(r);
            EXPECT_EQ(r.error(), common::Errc::already_exists);
        }
    }
    EXPECT_EQ(s->stats().commits, commits0 + 1);
    EXPECT_EQ(*s->queue().count(), 3u);
    for (const char* id : {"01pgwritedup000000", "01pgwritenew000001", "01pgwritenew000002"}) {
        const std::size_t want = std::string(id) == "01pgwritedup000000" ? 3 : 1200;
        EXPECT_EQ(db->query("SELECT count(*) FROM recipients WHERE message_id = $1", {id}).value_or(""),
                  std::to_string(want))
            << id;
    }
}
