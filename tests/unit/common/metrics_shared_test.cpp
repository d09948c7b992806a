// The shared metrics table (common/metrics.hpp): counts made in forked processes show in the
// parent's render(); histograms render cumulative buckets, _sum and _count; label sets and HELP
// are escaped; kinds do not mix; concurrent first uses of a series claim one slot.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "common/metrics.hpp"

using namespace mailward::common;

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST(MetricsShared, ChildrenCountIntoTheParentsTable) {
    metrics::share_with_children();
    const auto before = metrics::value("mw_shared_conn_total", "listener", "child");
    constexpr int kChildren = 3;
    std::vector<pid_t> pids;
    for (int i = 0; i < kChildren; ++i) {
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            for (int n = 0; n < 100; ++n) metrics::inc("mw_shared_conn_total", "Shared.", "listener", "child");
            metrics::observe("mw_shared_latency_seconds", "Shared latency.", {{"result", "ok"}}, 0.2);
            ::_exit(0);
        }
        pids.push_back(pid);
    }
    for (pid_t pid : pids) {
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    EXPECT_EQ(metrics::value("mw_shared_conn_total", "listener", "child"), before + kChildren * 100);
    EXPECT_EQ(metrics::value("mw_shared_latency_seconds", {{"result", "ok"}}), static_cast<std::uint64_t>(kChildren));
    const auto text = metrics::render();
    EXPECT_TRUE(
        has(text, "mw_shared_conn_total{listener=\"child\"} " + std::to_string(before + kChildren * 100) + "\n"))
        << text;
}

TEST(MetricsShared, HistogramRendersCumulativeBucketsSumAndCount) {
    struct Case {
        double seconds;
    };
    const Case cases[] = {{0.003}, {0.2}, {0.2}, {7}, {1000}, {-1}};
    for (const auto& c : cases) metrics::observe("mw_hist_seconds", "A histogram.", {{"kind", "a"}}, c.seconds);
    const auto text = metrics::render();
    EXPECT_TRUE(has(text, "# HELP mw_hist_seconds A histogram.\n# TYPE mw_hist_seconds histogram\n")) << text;
    // -1 counts as 0: two observations at or below 0.005.
    EXPECT_TRUE(has(text, "mw_hist_seconds_bucket{kind=\"a\",le=\"0.005\"} 2\n")) << text;
    EXPECT_TRUE(has(text, "mw_hist_seconds_bucket{kind=\"a\",le=\"0.25\"} 4\n")) << text;
    EXPECT_TRUE(has(text, "mw_hist_seconds_bucket{kind=\"a\",le=\"10\"} 5\n")) << text;
    EXPECT_TRUE(has(text, "mw_hist_seconds_bucket{kind=\"a\",le=\"300\"} 5\n")) << text;
    EXPECT_TRUE(has(text, "mw_hist_seconds_bucket{kind=\"a\",le=\"+Inf\"} 6\n")) << text;
    EXPECT_TRUE(has(text, "mw_hist_seconds_count{kind=\"a\"} 6\n")) << text;
    EXPECT_TRUE(has(text, "mw_hist_seconds_sum{kind=\"a\"} 1007.403\n")) << text;
    metrics::observe("mw_hist_plain_seconds", "No labels.", {}, 0.05);
    EXPECT_TRUE(has(metrics::render(), "mw_hist_plain_seconds_bucket{le=\"0.05\"} 1\n"));
}

TEST(MetricsShared, SeveralLabelsAndEscaping) {
    metrics::add("mw_multi_total", "Help with \\ and\nnewline.", {{"result", "sent"}, {"tls_level", "a\"b"}}, 2);
    const auto text = metrics::render();
    EXPECT_TRUE(has(text, "# HELP mw_multi_total Help with \\\\ and\\nnewline.\n")) << text;
    EXPECT_TRUE(has(text, "mw_multi_total{result=\"sent\",tls_level=\"a\\\"b\"} 2\n")) << text;
    EXPECT_EQ(metrics::value("mw_multi_total", {{"result", "sent"}, {"tls_level", "a\"b"}}), 2u);
}

TEST(MetricsShared, AKindDoesNotTurnIntoAnother) {
    metrics::inc("mw_kind_total", "A counter.");
    metrics::observe("mw_kind_total", "Not a histogram.", {}, 1.0);  // same series, other kind: ignored
    EXPECT_EQ(metrics::value("mw_kind_total"), 1u);
    EXPECT_FALSE(has(metrics::render(), "mw_kind_total_bucket"));
}

TEST(MetricsShared, OverlongNamesAreDroppedAndCounted) {
    const auto before = metrics::dropped();
    metrics::inc(std::string(200, 'x') + "_total", "Too long.");
    metrics::inc("mw_long_label_total", "Long label.", "l", std::string(400, 'v'));
    EXPECT_EQ(metrics::dropped(), before + 2);
    EXPECT_TRUE(has(metrics::render(), "mailward_metrics_dropped_total " + std::to_string(before + 2) + "\n"));
}

TEST(MetricsShared, ConcurrentFirstUseClaimsOneSeries) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([] {
            for (int n = 0; n < 1000; ++n) metrics::inc("mw_race_total", "Race.", "k", "v");
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(metrics::value("mw_race_total", "k", "v"), 8000u);
    const auto text = metrics::render();
    const auto first = text.find("mw_race_total{k=\"v\"}");
    ASSERT_NE(first, std::string::npos);
    EXPECT_EQ(text.find("mw_race_total{k=\"v\"}", first + 1), std::string::npos) << text;
}

TEST(MetricsShared, CollectorTextIsAppended) {
    metrics::set_collector([] { return std::string("# TYPE mw_gauge gauge\nmw_gauge 7\n"); });
    EXPECT_TRUE(has(metrics::render(), "# TYPE mw_gauge gauge\nmw_gauge 7\n"));
    metrics::set_collector({});
    EXPECT_FALSE(has(metrics::render(), "mw_gauge 7"));
}
