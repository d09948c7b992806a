// Counters for operations, in the Prometheus text exposition format (version 0.0.4). `mailward
// serve` writes them to data_dir/metrics.prom (atomically, every 5 s and at shutdown) for
// node_exporter's textfile collector or any scraper that reads a file. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mailward::common::metrics {

// Adds n to the counter name{label=value} (label may be empty: no labels). name must be a valid
// metric name; value is escaped. help is recorded on first use.
void inc(std::string_view name, std::string_view help, std::string_view label = {}, std::string_view value = {},
         std::uint64_t n = 1);

// The current value (0 when never incremented), for tests.
std::uint64_t value(std::string_view name, std::string_view label = {}, std::string_view value = {});

// Every counter, sorted, with HELP and TYPE lines.
std::string render();

}  // namespace mailward::common::metrics
