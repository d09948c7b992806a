// The counters' file (metrics.hpp): `mailward serve` rewrites data_dir/metrics.prom atomically every
// few seconds on its io_context and once more at shutdown, for node_exporter's textfile collector
// or any scraper that reads a file (Prometheus text format 0.0.4). Write errors are ignored: the
// next tick tries again.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <filesystem>

namespace mailward::common::metrics {

class FileWriter {
  public:
    FileWriter(boost::asio::io_context& io, std::filesystem::path path,
               std::chrono::milliseconds interval = std::chrono::seconds(5))
        : timer_(io), path_(std::move(path)), interval_(interval) {}
    FileWriter(const FileWriter&) = delete;
    FileWriter& operator=(const FileWriter&) = delete;

    // Writes every interval from now on (the first write one interval from now).
    void start();
    // No more timed writes. Call on the io_context's thread (the timer is not thread-safe).
    void stop() { timer_.cancel(); }
    // Writes the file now (mode 0644).
    void write() const;

  private:
    void schedule();

    boost::asio::steady_timer timer_;
    std::filesystem::path path_;
    std::chrono::milliseconds interval_;
};

}  // namespace mailward::common::metrics
