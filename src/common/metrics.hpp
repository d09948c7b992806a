// Counters and histograms for operations, in the Prometheus text exposition format (version
// 0.0.4). The registry is one fixed-size table of atomic values in a shared anonymous mapping
// (mmap MAP_SHARED|MAP_ANONYMOUS): `mailward serve` makes it (share_with_children()) before it
// forks, so every process counts into the same table and serve renders them all, at /metrics
// ([metrics] listen) and in data_dir/metrics.prom. Lock-free, thread- and process-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace mailward::common::metrics {

// Label pairs of one series, e.g. {{"result", "delivered"}, {"tls", "verify"}}.
using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Maps the table now, if not yet: processes forked afterwards share it. Call before the first fork.
void share_with_children();

// Adds n to the counter name{label=value} (label may be empty: no labels). name must be a valid
// metric name ending in _total; value is escaped. help is recorded on first use.
void inc(std::string_view name, std::string_view help, std::string_view label = {}, std::string_view value = {},
         std::uint64_t n = 1);
// The same with several labels (names valid, values escaped).
void add(std::string_view name, std::string_view help, Labels labels, std::uint64_t n = 1);

// Records one observation (seconds, negative counts as 0) in the histogram name{labels}, with the
// buckets of kBuckets (name ends in _seconds).
void observe(std::string_view name, std::string_view help, Labels labels, double seconds);
inline constexpr double kBuckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

// The current value (0 when never incremented), for tests. For a histogram: its count.
std::uint64_t value(std::string_view name, std::string_view label = {}, std::string_view value = {});
std::uint64_t value(std::string_view name, Labels labels);

// Series that do not fit in the table (it holds kCapacity): dropped, and counted here.
inline constexpr std::size_t kCapacity = 2048;
std::uint64_t dropped();

// Text appended to render() in this process (gauges computed at scrape time, e.g. the queue's size
// from the store). It must return whole families (HELP, TYPE, samples). Empty: none.
void set_collector(std::function<std::string()> collector);

// Every series, families sorted by name, HELP and TYPE once per family, then the collector's text.
std::string render();

// A label value or HELP text escaped for the text format (backslash, double quote in label
// values, newline).
std::string escape(std::string_view text, bool quote);

}  // namespace mailward::common::metrics
