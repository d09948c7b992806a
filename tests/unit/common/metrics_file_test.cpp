// common::metrics::FileWriter: the counters' file is written on each tick (what render() says,
// mode 0644), not before the first tick, no more after stop(), and at once by write().
#include "common/metrics_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/asio/post.hpp>

#include "common/fsutil.hpp"
#include "common/metrics.hpp"
#include "temp_dir.hpp"

using namespace mailward;
namespace metrics = common::metrics;

TEST(MetricsFile, WritesOnEachTickUntilStopped) {
    mailward::test::TempDir dir;
    const auto path = dir.path() / "metrics.prom";
    boost::asio::io_context io;
    metrics::FileWriter writer(io, path, std::chrono::milliseconds(20));
    metrics::inc("mailward_unit_metrics_file_total", "test counter");
    writer.start();
    EXPECT_FALSE(std::filesystem::exists(path)) << "nothing before the first tick";

    io.run_for(std::chrono::milliseconds(200));
    auto first = common::read_file(path);
    ASSERT_TRUE(first);
    EXPECT_EQ(*first, metrics::render());
    EXPECT_NE(first->find("mailward_unit_metrics_file_total 1"), std::string::npos) << *first;
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0644u);

    // The next tick picks up a new count.
    metrics::inc("mailward_unit_metrics_file_total", "test counter");
    io.restart();
    io.run_for(std::chrono::milliseconds(200));
    EXPECT_NE(common::read_file(path)->find("mailward_unit_metrics_file_total 2"), std::string::npos);

    // Stopped: no timed write any more; the io_context runs out of work.
    boost::asio::post(io, [&writer] { writer.stop(); });
    io.restart();
    io.run_for(std::chrono::milliseconds(200));
    EXPECT_TRUE(io.stopped()) << "a stopped writer leaves no pending timer";
    metrics::inc("mailward_unit_metrics_file_total", "test counter");
    EXPECT_EQ(common::read_file(path)->find("mailward_unit_metrics_file_total 3"), std::string::npos);

    // write(): at once (serve's last write at shutdown).
    writer.write();
    EXPECT_EQ(*common::read_file(path), metrics::render());
}
