// The MTA-STS cache beyond its rules table (mta_sts_test.cpp): concurrent lookups of one domain share
// one fetch; the policy file of earlier builds (read once, to import it: mta_sts_store.hpp) drops
// expired, malformed and forged entries and ignores a corrupt file. The store: mta_sts_store_test.cpp.
#include <gtest/gtest.h>

#include "temp_dir.hpp"
#include <stdlib.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <fstream>

#include "policy/mta_sts_cache_file.hpp"
#include "policy/mta_sts_fetch.hpp"
#include "support/fake_resolver.hpp"

using namespace mailward;
using namespace mailward::policy;
using Clock = std::chrono::system_clock;
using Mode = MtaStsPolicy::Mode;
using namespace std::chrono_literals;

namespace {

// A fetch that takes 50 ms of the io_context's time, so lookups overlap.
class SlowFetcher : public MtaStsFetcher {
  public:
    int calls = 0;
    boost::asio::awaitable<MtaStsFetchResult> fetch(std::string domain) override {
        ++calls;
        boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, 50ms);
        co_await t.async_wait(boost::asio::use_awaitable);
        MtaStsFetchResult r;
        r.policy = MtaStsPolicy{Mode::enforce, {"mx." + domain}, std::chrono::seconds(86400)};
        co_return r;
    }
};

using mailward::test::TempDir;

std::filesystem::path cache_file(const TempDir& dir) { return dir.path() / "mta-sts-cache.json"; }

dns::TxtAnswer record(const std::string& id) {
    dns::TxtAnswer a;
    a.texts = {"v=STSv1; id=" + id + ";"};
    return a;
}

TEST(MtaStsCacheShared, ConcurrentLookupsShareOneFetch) {
    dns::FakeResolver resolver;
    resolver.txt_answers.emplace("_mta-sts.example.test", record("s1"));
    SlowFetcher fetcher;
    MtaStsCache cache(resolver, fetcher);
    boost::asio::io_context io;
    const auto now = Clock::now();
    std::vector<std::future<MtaStsLookup>> got;
    for (int i = 0; i < 5; ++i)
        got.push_back(boost::asio::co_spawn(io, cache.get("example.test", now), boost::asio::use_future));
    io.run();
    EXPECT_EQ(fetcher.calls, 1);
    for (auto& f : got) {
        auto l = f.get();
        ASSERT_TRUE(l.policy);
        EXPECT_EQ(l.policy->mode, Mode::enforce);
        EXPECT_EQ(l.source, MtaStsLookup::Source::fetched);
    }
}

TEST(MtaStsCacheFile, DamagedFilesAndEntriesAreDropped) {
    TempDir dir;
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
    const std::string fresh = std::to_string(now_ms - 1000), later = std::to_string(now_ms + 3600'000);
    struct Row {
        const char* name;
        std::string text;
        std::size_t want;
    } rows[] = {
        {"not json", "{{{ nope", 0},
        {"not an object", "[1,2]", 0},
        {"no policies", "{\"version\":1}", 0},
        {"entry without id",
         "{\"policies\":{\"a.test\":{\"policy\":\"x\",\"fetched_at\":" + fresh + ",\"expires\":" + later + "}}}", 0},
        {"policy text forged",
         "{\"policies\":{\"a.test\":{\"id\":\"i\",\"policy\":\"version: STSv1\\nmode: evil\\nmax_age: "
         "86400\\n\",\"fetched_at\":" +
             fresh + ",\"expires\":" + later + "}}}",
         0},
        {"expires beyond max_age is capped",
         "{\"policies\":{\"a.test\":{\"id\":\"i\",\"policy\":\"version: STSv1\\nmode: enforce\\nmax_age: 1\\nmx: "
         "m.a.test\\n\",\"fetched_at\":" +
             fresh + ",\"expires\":" + later + "}}}",
         0},
        {"one good entry",
         "{\"policies\":{\"a.test\":{\"id\":\"i\",\"policy\":\"version: STSv1\\nmode: enforce\\nmax_age: 86400\\nmx: "
         "m.a.test\\n\",\"fetched_at\":" +
             fresh + ",\"expires\":" + later + "}, \"b.test\": 5}}",
         1},
    };
    for (const auto& r : rows) {
        std::ofstream(cache_file(dir)) << r.text;
        EXPECT_EQ(MtaStsCacheFile(cache_file(dir)).load().size(), r.want) << r.name;
    }
}

}  // namespace
