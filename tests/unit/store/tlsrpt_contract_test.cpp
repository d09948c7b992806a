// The TLS-RPT (RFC 8460) counts on every backend (backend.hpp): adding to the same key sums (two
// nodes recording the same day end with the total), rows of another day or key stay apart, invalid
// rows are refused whole, a report claim succeeds once (across a second node too), and a purge
// removes the days before the cut-off and keeps the others across a reopen.
#include <gtest/gtest.h>

#include "backend.hpp"
#include "policy_test_util.hpp"

using namespace mailward;
using namespace mailward::store;
using namespace mailward::store::test;

namespace {

TlsRptCount row(const std::string& day, const std::string& domain, const std::string& result, std::int64_t n,
                const std::string& mx = "") {
    return {day,
            domain,
            "sts",
            "version: STSv1\nmode: enforce",
            "mx." + domain,
            result,
            result.empty() ? "" : "127.0.0.1",
            mx,
            mx.empty() ? "" : "127.0.0.2",
            n};
}

}  // namespace

TEST_P(PolicyContract, TlsRptCountsSumPerKeyAcrossNodes) {
    auto second = backend->open();  // another node on the same data
    ASSERT_TRUE(second);
    struct Step {
        const char* name;
        OpenedStore* node;
        std::vector<TlsRptCount> rows;
    };
    const Step steps[] = {
        {"successes", st.get(), {row("2026-12-06", "a.example", "", 2)}},
        {"more successes from another node", second.get(), {row("2026-12-06", "a.example", "", 3)}},
        {"a failure", st.get(), {row("2026-12-06", "a.example", "certificate-host-mismatch", 1, "mx.a.example")}},
        {"the same failure again",
         second.get(),
         {row("2026-12-06", "a.example", "certificate-host-mismatch", 4, "mx.a.example")}},
        {"another day", st.get(), {row("2026-12-07", "a.example", "", 7)}},
        {"another domain", st.get(), {row("2026-12-06", "b.example", "starttls-not-supported", 1, "mx.b.example")}},
    };
    for (const auto& s : steps) ASSERT_TRUE(s.node->policy().add_tlsrpt(s.rows)) << s.name;
    auto day = p().tlsrpt_day("2026-12-06");
    ASSERT_TRUE(day);
    ASSERT_EQ(day->size(), 3u);
    EXPECT_EQ((*day)[0].policy_domain, "a.example");
    EXPECT_EQ((*day)[0].result_type, "");
    EXPECT_EQ((*day)[0].count, 5);
    EXPECT_EQ((*day)[1].result_type, "certificate-host-mismatch");
    EXPECT_EQ((*day)[1].count, 5);
    EXPECT_EQ((*day)[1].receiving_mx, "mx.a.example");
    EXPECT_EQ((*day)[1].receiving_ip, "127.0.0.2");
    EXPECT_EQ((*day)[1].policy_strings, "version: STSv1\nmode: enforce");
    EXPECT_EQ((*day)[2].policy_domain, "b.example");
    auto next = p().tlsrpt_day("2026-12-07");
    ASSERT_TRUE(next);
    ASSERT_EQ(next->size(), 1u);
    EXPECT_EQ((*next)[0].count, 7);
}

TEST_P(PolicyContract, InvalidTlsRptRowsAreRefusedWhole) {
    auto bad_day = row("2026-13", "a.example", "", 1);
    auto no_domain = row("2026-12-06", "", "", 1);
    auto zero = row("2026-12-06", "a.example", "", 0);
    auto no_type = row("2026-12-06", "a.example", "", 1);
    no_type.policy_type.clear();
    for (const auto* bad : {&bad_day, &no_domain, &zero, &no_type}) {
        auto r = p().add_tlsrpt({row("2026-12-06", "good.example", "", 1), *bad});
        ASSERT_FALSE(r) << bad->day << "/" << bad->policy_domain;
        EXPECT_EQ(r.error(), common::Errc::invalid_argument);
    }
    auto day = p().tlsrpt_day("2026-12-06");
    ASSERT_TRUE(day);
    EXPECT_TRUE(day->empty());
}

TEST_P(PolicyContract, TlsRptReportIsClaimedOnceAndOldDaysArePurged) {
    auto second = backend->open();
    ASSERT_TRUE(second);
    auto first = p().claim_tlsrpt("2026-12-06", "a.example", "r1", kPolicyT0);
    ASSERT_TRUE(first);
    EXPECT_TRUE(*first);
    auto again = second->policy().claim_tlsrpt("2026-12-06", "a.example", "r2", kPolicyT0);
    ASSERT_TRUE(again);
    EXPECT_FALSE(*again) << "claimed twice";
    auto other = second->policy().claim_tlsrpt("2026-12-07", "a.example", "r3", kPolicyT0);
    ASSERT_TRUE(other && *other);
    ASSERT_TRUE(p().add_tlsrpt({row("2026-12-05", "a.example", "", 1), row("2026-12-06", "a.example", "", 1),
                                row("2026-12-07", "a.example", "", 1)}));
    auto n = p().purge_tlsrpt("2026-12-07");
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 3u);  // two days of counts, one claim
    second.reset();
    st->close();
    st = backend->open();
    ASSERT_TRUE(st);
    for (const char* gone : {"2026-12-05", "2026-12-06"}) {
        auto d = p().tlsrpt_day(gone);
        ASSERT_TRUE(d);
        EXPECT_TRUE(d->empty()) << gone;
    }
    auto kept = p().tlsrpt_day("2026-12-07");
    ASSERT_TRUE(kept);
    EXPECT_EQ(kept->size(), 1u);
    auto reclaim = p().claim_tlsrpt("2026-12-06", "a.example", "r4", kPolicyT0);  // purged: may be claimed again
    ASSERT_TRUE(reclaim);
    EXPECT_TRUE(*reclaim);
    auto still = p().claim_tlsrpt("2026-12-07", "a.example", "r5", kPolicyT0);
    ASSERT_TRUE(still);
    EXPECT_FALSE(*still);
}
