// The MTA-STS cache over the store (mta_sts_store.hpp), on an SQLite store in a temp dir: policies
// round-trip as text and are parsed again (expired, forged and over-long rows are not used), a
// restarted cache starts with them, two caches on one store ("two nodes") share a fetch - also when
// the TXT record is stripped on the second one's path, or its own cached policy is older - and
// the store is asked again only after kMtaStsStoreRecheck; a file of earlier builds is imported once.
// The rows themselves on both backends: tests/unit/store/mta_sts_contract_test.cpp.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <fstream>

#include "policy/mta_sts_store.hpp"
#include "store/policy_store.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "support/fake_resolver.hpp"
#include "temp_dir.hpp"

using namespace mailward;
using namespace mailward::policy;
using Clock = std::chrono::system_clock;
using Mode = MtaStsPolicy::Mode;
using namespace std::chrono_literals;
using mailward::test::TempDir;

namespace {

class CountingFetcher : public MtaStsFetcher {
  public:
    int calls = 0;
    boost::asio::awaitable<MtaStsFetchResult> fetch(std::string domain) override {
        ++calls;
        MtaStsFetchResult r;
        r.policy = MtaStsPolicy{Mode::enforce, {"mx." + domain}, std::chrono::seconds(86400)};
        co_return r;
    }
};

dns::TxtAnswer record(const std::string& id) {
    dns::TxtAnswer a;
    a.texts = {"v=STSv1; id=" + id + ";"};
    return a;
}

MtaStsLookup lookup(MtaStsCache& cache, const std::string& domain, Clock::time_point now) {
    boost::asio::io_context io;
    auto f = boost::asio::co_spawn(io, cache.get(domain, now), boost::asio::use_future);
    io.run();
    return f.get();
}

CachedMtaStsPolicy entry(std::string id, Clock::time_point fetched, std::chrono::seconds max_age,
                         Mode mode = Mode::enforce) {
    CachedMtaStsPolicy c;
    c.policy = MtaStsPolicy{mode, {"mx1.example.test", "*.example.net"}, max_age};
    if (mode == Mode::none) c.policy.mx.clear();
    c.id = std::move(id);
    c.fetched_at = fetched;
    c.expires = fetched + max_age;
    return c;
}

class MtaStsStoreTest : public ::testing::Test {
  protected:
    void SetUp() override { reopen(); }
    void reopen() {
        db.reset();
        auto s = store::sqlite::SqliteStore::open(dir.path() / "mailward.db");
        ASSERT_TRUE(s) << s.error().message();
        db = std::move(*s);
    }
    store::PolicyStore& ps() { return db->policy(); }
    TempDir dir;
    std::unique_ptr<store::sqlite::SqliteStore> db;
};

TEST_F(MtaStsStoreTest, PoliciesRoundTripAsTextAndBadRowsAreNotUsed) {
    MtaStsStore sts(ps());
    EXPECT_TRUE(sts.load().empty());
    const auto now = Clock::now();
    sts.save("live.example.test", entry("a1", now - 1h, 86400s));
    sts.save("none.example.test", entry("n1", now - 1h, 86400s, Mode::none));
    sts.save("old.example.test", entry("o1", now - 48h, 86400s));
    // Rows no fetch could have produced: the text is parsed again, the expiry capped at max_age.
    ASSERT_TRUE(ps().put_mta_sts(
        {"forged.example.test", "f1", "version: STSv1\nmode: evil\nmax_age: 86400\n", now - 1h, now + 1h}));
    ASSERT_TRUE(ps().put_mta_sts({"capped.example.test", "c1",
                                  "version: STSv1\nmode: enforce\nmax_age: 60\nmx: m.capped.example.test\n", now - 1h,
                                  now + 1h}));
    ASSERT_TRUE(
        ps().put_mta_sts({"bad..name", "b1", "version: STSv1\nmode: none\nmax_age: 86400\n", now - 1h, now + 1h}));
    auto out = sts.load();
    ASSERT_EQ(out.size(), 2u) << "expired, forged, capped and invalid-name rows are not used";
    const auto& live = out.at("live.example.test");
    EXPECT_EQ(live.id, "a1");
    EXPECT_EQ(live.policy.mode, Mode::enforce);
    EXPECT_EQ(live.policy.mx, (std::vector<std::string>{"mx1.example.test", "*.example.net"}));
    EXPECT_EQ(live.policy.max_age, 86400s);
    EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(live.expires - (now - 1h + 86400s)).count(), 0);
    EXPECT_EQ(out.at("none.example.test").policy.mode, Mode::none);
    EXPECT_FALSE(sts.find("forged.example.test"));
    EXPECT_FALSE(sts.find("old.example.test"));
    EXPECT_TRUE(sts.find("live.example.test"));
}

TEST_F(MtaStsStoreTest, ARestartedCacheStartsWithWhatWasFetched) {
    dns::FakeResolver resolver;
    resolver.txt_answers.emplace("_mta-sts.example.test", record("r1"));
    const auto now = Clock::now();
    {
        MtaStsStore sts(ps());
        CountingFetcher fetcher;
        MtaStsCache cache(resolver, fetcher, &sts);
        EXPECT_EQ(lookup(cache, "example.test", now).source, MtaStsLookup::Source::fetched);
        EXPECT_EQ(fetcher.calls, 1);
    }
    reopen();
    MtaStsStore sts(ps());
    CountingFetcher fetcher;
    MtaStsCache cache(resolver, fetcher, &sts);  // "after the restart"
    EXPECT_EQ(cache.size(), 1u);
    auto l = lookup(cache, "example.test", now + 1min);
    EXPECT_EQ(l.source, MtaStsLookup::Source::cache);
    EXPECT_EQ(fetcher.calls, 0) << "no fetch: the stored policy is used";
}

// Node A fetches; node B, whose path to the DNS an attacker strips of the TXT record, still
// enforces A's policy; and a node whose cached policy is older takes the newer one instead of
// fetching it again. Both run their store calls on a pool, as serve does.
TEST_F(MtaStsStoreTest, APolicyFetchedByOneNodeIsUsedByAnother) {
    boost::asio::thread_pool pool(1);
    dns::FakeResolver dns_a, dns_b;
    dns_a.txt_answers.emplace("_mta-sts.shared.example.test", record("v2"));
    // dns_b has no TXT record at all: nxdomain, as a stripping attacker makes it.
    MtaStsStore sts_a(ps()), sts_b(ps());
    CountingFetcher fetch_a, fetch_b;
    MtaStsCache a(dns_a, fetch_a, &sts_a, &pool);
    MtaStsCache b(dns_b, fetch_b, &sts_b, &pool);
    const auto now = Clock::now();

    auto before = lookup(b, "shared.example.test", now);
    EXPECT_FALSE(before.policy) << before.status;
    EXPECT_EQ(lookup(a, "shared.example.test", now + 1s).source, MtaStsLookup::Source::fetched);
    // B asked the store 1 s before A stored the policy: not again until kMtaStsStoreRecheck.
    auto soon = lookup(b, "shared.example.test", now + 2s);
    EXPECT_FALSE(soon.policy) << soon.status;
    auto later = lookup(b, "shared.example.test", now + kMtaStsStoreRecheck);
    ASSERT_TRUE(later.policy) << later.status;
    EXPECT_EQ(later.policy->mode, Mode::enforce);
    EXPECT_EQ(later.id, "v2");
    EXPECT_EQ(later.source, MtaStsLookup::Source::cache);
    EXPECT_EQ(fetch_b.calls, 0);

    // A third node that cached id v1 sees the record's id v2 and the store's fetch of it: no fetch.
    dns::FakeResolver dns_c;
    dns_c.txt_answers.emplace("_mta-sts.shared.example.test", record("v2"));
    MtaStsStore sts_c(ps());
    CountingFetcher fetch_c;
    MtaStsCache c(dns_c, fetch_c, &sts_c, &pool);
    c.put("shared.example.test", entry("v1", now - 1h, 86400s));
    auto l = lookup(c, "shared.example.test", now + 3s);
    ASSERT_TRUE(l.policy) << l.status;
    EXPECT_EQ(l.id, "v2");
    EXPECT_EQ(l.source, MtaStsLookup::Source::cache);
    EXPECT_EQ(fetch_c.calls, 0);
    EXPECT_EQ(fetch_a.calls, 1);
}

TEST_F(MtaStsStoreTest, AFileOfEarlierBuildsIsImportedOnce) {
    const auto file = dir.path() / "mta-sts-cache.json";
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
    std::ofstream(file) << "{\"version\":1,\"policies\":{\"old.example.test\":{\"id\":\"i1\",\"policy\":\"version: "
                           "STSv1\\nmode: enforce\\nmax_age: 86400\\nmx: mx.old.example.test\\n\",\"fetched_at\":"
                        << now_ms - 1000 << ",\"expires\":" << now_ms + 3600'000 << "}}}";
    MtaStsStore sts(ps());
    EXPECT_EQ(import_mta_sts_file(file, sts), 1u);
    EXPECT_FALSE(std::filesystem::exists(file));
    EXPECT_TRUE(std::filesystem::exists(dir.path() / "mta-sts-cache.json.imported"));
    auto got = sts.find("old.example.test");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->id, "i1");
    EXPECT_EQ(got->policy.mx, std::vector<std::string>{"mx.old.example.test"});
    EXPECT_EQ(import_mta_sts_file(file, sts), 0u) << "nothing left to import";
}

}  // namespace
