// The shared MTA-STS policy rows on every backend (backend.hpp): one row per domain, a later fetch
// replaces an earlier one and never the reverse (two nodes writing in either order end with the
// newer policy), invalid rows are refused, expired rows are purged, and rows survive a reopen.
#include <gtest/gtest.h>

#include "backend.hpp"
#include "policy_test_util.hpp"

using namespace mailward;
using namespace mailward::store;
using namespace mailward::store::test;
using namespace std::chrono_literals;

namespace {

const TimePoint t0 = kPolicyT0;

StoredMtaSts sts(const std::string& domain, const std::string& id, TimePoint fetched, std::chrono::seconds age = 1h) {
    return {domain, id, "version: STSv1\nmode: enforce\nmax_age: 86400\nmx: mx." + domain + "\n", fetched,
            fetched + age};
}

}  // namespace

TEST_P(PolicyContract, MtaStsRowsKeepTheNewestFetch) {
    PolicyStore& ps = p();
    struct Step {
        const char* name;
        StoredMtaSts put;
        bool stored;
        const char* want_id;
    };
    const Step steps[] = {
        {"first fetch", sts("a.example", "one", t0), true, "one"},
        {"a later fetch replaces it", sts("a.example", "two", t0 + 10s), true, "two"},
        {"an older fetch written late does not", sts("a.example", "old", t0 + 5s), false, "two"},
        {"nor one fetched at the same time", sts("a.example", "same", t0 + 10s), false, "two"},
        {"another domain is its own row", sts("b.example", "b1", t0), true, "two"},
    };
    for (const auto& s : steps) {
        auto r = ps.put_mta_sts(s.put);
        ASSERT_TRUE(r) << s.name << ": " << r.error().message();
        EXPECT_EQ(*r, s.stored) << s.name;
        auto got = ps.mta_sts("a.example");
        ASSERT_TRUE(got && got->has_value()) << s.name;
        EXPECT_EQ((*got)->id, s.want_id) << s.name;
    }
    auto a = ps.mta_sts("a.example");
    ASSERT_TRUE(a && a->has_value());
    EXPECT_EQ((*a)->policy, sts("a.example", "two", t0).policy);
    EXPECT_EQ((*a)->fetched_at, t0 + 10s);
    EXPECT_EQ((*a)->expires, t0 + 10s + 1h);
    auto none = ps.mta_sts("c.example");
    ASSERT_TRUE(none);
    EXPECT_FALSE(none->has_value());
    auto all = ps.mta_sts_all();
    ASSERT_TRUE(all);
    ASSERT_EQ(all->size(), 2u);
    EXPECT_EQ((*all)[0].domain, "a.example");
    EXPECT_EQ((*all)[1].domain, "b.example");
}

TEST_P(PolicyContract, InvalidMtaStsRowsAreRefused) {
    PolicyStore& ps = p();
    auto no_domain = sts("", "x", t0);
    auto no_id = sts("d.example", "", t0);
    auto no_text = sts("d.example", "x", t0);
    no_text.policy.clear();
    auto expired_at_fetch = sts("d.example", "x", t0, 0s);
    for (const auto* bad : {&no_domain, &no_id, &no_text, &expired_at_fetch}) {
        auto r = ps.put_mta_sts(*bad);
        ASSERT_FALSE(r) << bad->domain << "/" << bad->id;
        EXPECT_EQ(r.error(), common::Errc::invalid_argument);
    }
    auto all = ps.mta_sts_all();
    ASSERT_TRUE(all);
    EXPECT_TRUE(all->empty());
}

TEST_P(PolicyContract, ExpiredMtaStsRowsArePurgedAndOthersSurviveAReopen) {
    {
        PolicyStore& ps = p();
        ASSERT_TRUE(ps.put_mta_sts(sts("short.example", "s", t0, 60s)));
        ASSERT_TRUE(ps.put_mta_sts(sts("long.example", "l", t0, 1h)));
        auto n = ps.purge_mta_sts(t0 + 60s);  // expires is exclusive: gone at its instant
        ASSERT_TRUE(n);
        EXPECT_EQ(*n, 1u);
        st->close();
        st.reset();
    }
    st = backend->open();
    ASSERT_TRUE(st);
    auto all = p().mta_sts_all();
    ASSERT_TRUE(all);
    ASSERT_EQ(all->size(), 1u);
    EXPECT_EQ((*all)[0].domain, "long.example");
    EXPECT_EQ((*all)[0].id, "l");
}
