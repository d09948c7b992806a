// The learned policy ratchet in SQLite: raised by evidence, never lowered by weaker evidence (only
// confirmed), forgotten only on request; incidents are an append-only history per domain.
#include <gtest/gtest.h>

#include "store/store.hpp"
#include "store_test_util.hpp"

using namespace mailward;
using namespace mailward::store;
using namespace mailward::store::test;
using namespace std::chrono_literals;

TEST(PolicyStore, RatchetRaisesNeverLowers) {
    TempDir dir;
    auto st = store::open(config_for(dir.path()));
    ASSERT_TRUE(st);
    auto& p = (*st)->policy();
    const auto t0 = ms(1'800'000'000'000);
    struct Step { const char* level; int rank; TimePoint at; bool changed; const char* want; };
    const Step steps[] = {
        {"encrypt", 2, t0, true, "encrypt"},
        {"may", 1, t0 + 1h, false, "encrypt"},     // weaker evidence: confirmed, not lowered
        {"verify", 3, t0 + 2h, true, "verify"},
        {"encrypt", 2, t0 + 3h, false, "verify"},
        {"verify", 3, t0 + 4h, false, "verify"},   // same level: confirmed
    };
    for (const auto& s : steps) {
        auto r = p.raise("example.org", s.level, s.rank, "{\"probe\":1}", s.at);
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(*r, s.changed) << s.level;
        auto got = p.get("example.org");
        ASSERT_TRUE(got && got->has_value());
        EXPECT_EQ((*got)->level, s.want) << s.level;
        EXPECT_EQ((*got)->first_seen, t0);
        EXPECT_EQ((*got)->last_confirmed, s.at);
    }
    auto all = p.list();
    ASSERT_TRUE(all);
    EXPECT_EQ(all->size(), 1u);
    ASSERT_TRUE(p.forget("example.org"));
    auto gone = p.get("example.org");
    ASSERT_TRUE(gone);
    EXPECT_FALSE(gone->has_value());
    auto again = p.forget("example.org");
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error(), common::Errc::not_found);
}

TEST(PolicyStore, IncidentsAreKeptInOrderPerDomain) {
    TempDir dir;
    auto st = store::open(config_for(dir.path()));
    ASSERT_TRUE(st);
    auto& p = (*st)->policy();
    const auto t0 = ms(1'800'000'000'000);
    ASSERT_TRUE(p.add_incident({"a.example", t0, "starttls_missing", "mx.a.example: STARTTLS not offered"}));
    ASSERT_TRUE(p.add_incident({"b.example", t0, "tls_failed", "x"}));
    ASSERT_TRUE(p.add_incident({"a.example", t0 + 1min, "starttls_refused", "454 4.7.0"}));
    auto inc = p.incidents("a.example");
    ASSERT_TRUE(inc);
    ASSERT_EQ(inc->size(), 2u);
    EXPECT_EQ((*inc)[0].kind, "starttls_missing");
    EXPECT_EQ((*inc)[1].kind, "starttls_refused");
    EXPECT_EQ((*inc)[1].at, t0 + 1min);
}
