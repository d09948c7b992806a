// The secure reply limits as tables: replies per message and per session in a sliding window (with
// the Retry-After they give), the total size of a message's replies, and the reply_sent audit
// detail they are read back from.
#include <gtest/gtest.h>

#include "escrow/reply_limits.hpp"

using namespace mailward;
using namespace std::chrono_literals;
using escrow::PastReply;
using escrow::ReplyVerdict;

namespace {

const store::EscrowTime t0{std::chrono::seconds(1'900'000'000)};

TEST(ReplyLimits, WindowsAndTotal) {
    const escrow::ReplyLimits limits{3, 2, 3600s, 1000};
    struct Row {
        std::string name;
        std::vector<PastReply> past;
        std::string session;
        std::size_t bytes;
        std::chrono::seconds now;  // after t0
        ReplyVerdict want;
        std::chrono::seconds retry_after;
    } rows[] = {
        {"the first reply", {}, "s1", 10, 0s, ReplyVerdict::allowed, 0s},
        {"under both limits", {{t0, "s1", 10}}, "s1", 10, 60s, ReplyVerdict::allowed, 0s},
        {"the session's 2 in the window",
         {{t0, "s1", 10}, {t0 + 10s, "s1", 10}},
         "s1",
         10,
         60s,
         ReplyVerdict::too_many,
         3540s},
        {"another session of the same message",
         {{t0, "s1", 10}, {t0 + 10s, "s1", 10}},
         "s2",
         10,
         60s,
         ReplyVerdict::allowed,
         0s},
        {"the message's 3 in the window, any sessions",
         {{t0, "s1", 10}, {t0 + 10s, "s2", 10}, {t0 + 20s, "s3", 10}},
         "s4",
         10,
         60s,
         ReplyVerdict::too_many,
         3540s},
        {"the oldest has left the window",
         {{t0, "s1", 10}, {t0 + 10s, "s2", 10}, {t0 + 20s, "s3", 10}},
         "s4",
         10,
         3600s,
         ReplyVerdict::allowed,
         0s},
        {"one second before it leaves",
         {{t0, "s1", 10}, {t0 + 10s, "s2", 10}, {t0 + 20s, "s3", 10}},
         "s4",
         10,
         3599s,
         ReplyVerdict::too_many,
         1s},
        {"both full: wait for the later of the two",
         {{t0, "s2", 10}, {t0 + 100s, "s1", 10}, {t0 + 200s, "s1", 10}},
         "s1",
         10,
         300s,
         ReplyVerdict::too_many,
         3400s},
        {"order of rows does not matter",
         {{t0 + 20s, "s3", 10}, {t0, "s1", 10}, {t0 + 10s, "s2", 10}},
         "s4",
         10,
         60s,
         ReplyVerdict::too_many,
         3540s},
        {"old replies count toward the total only",
         {{t0 - 7200s, "s1", 500}, {t0 - 7100s, "s1", 400}},
         "s1",
         100,
         0s,
         ReplyVerdict::allowed,
         0s},
        {"one byte over the total",
         {{t0 - 7200s, "s1", 500}, {t0 - 7100s, "s1", 400}},
         "s1",
         101,
         0s,
         ReplyVerdict::total_exhausted,
         0s},
        {"total used up: refused before the size is known",
         {{t0 - 7200s, "s1", 1000}},
         "s2",
         0,
         0s,
         ReplyVerdict::total_exhausted,
         0s},
        {"a reply larger than the total", {}, "s1", 1001, 0s, ReplyVerdict::total_exhausted, 0s},
        {"rows without a session count for the message only",
         {{t0, "", 0}, {t0, "", 0}},
         "s1",
         10,
         1s,
         ReplyVerdict::allowed,
         0s},
    };
    for (const auto& r : rows) {
        auto d = escrow::check_reply(r.past, r.session, r.bytes, t0 + r.now, limits);
        EXPECT_EQ(d.verdict, r.want) << r.name;
        EXPECT_EQ(d.retry_after, r.retry_after) << r.name;
    }
}

TEST(ReplyLimits, AuditDetail) {
    EXPECT_EQ(escrow::reply_detail("Q1", 2, 3000, "abcdef012345"),
              "queue Q1, 2 attachment(s), 3000 bytes, session abcdef012345");
    EXPECT_EQ(escrow::session_tag("0123456789abcdef0123"), "0123456789ab");
    struct Row {
        std::string event, detail;
        bool is_reply;
        std::size_t bytes;
        std::string session;
    } rows[] = {
        {"reply_sent", "queue Q1, 2 attachment(s), 3000 bytes, session abcdef012345", true, 3000, "abcdef012345"},
        {"reply_sent", "queue Q1, 0 attachment(s)", true, 0, ""},  // written before sizes were kept
        {"reply_sent", "queue Q1, x bytes, session ", true, 0, ""},
        {"viewed", "queue Q1, 0 attachment(s), 3000 bytes, session a", false, 0, ""},
    };
    for (const auto& r : rows) {
        store::EscrowAuditEntry e;
        e.event = r.event;
        e.detail = r.detail;
        e.at = t0;
        auto p = escrow::past_reply_of(e);
        ASSERT_EQ(p.has_value(), r.is_reply) << r.detail;
        if (!p) continue;
        EXPECT_EQ(p->bytes, r.bytes) << r.detail;
        EXPECT_EQ(p->session, r.session) << r.detail;
        EXPECT_EQ(p->at, t0);
    }
}

}  // namespace
