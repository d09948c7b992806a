// Internal to `mailward queue` (queue_*.cpp only): the store opening and id checks the subcommands
// share, and the listing (queue_list.cpp: mailq's layout and postqueue -j's JSON, with filters).
#pragma once

#include <memory>
#include <string>

#include "cli/cli.hpp"
#include "store/store.hpp"

namespace mailward::cli::queue_cli {

std::unique_ptr<store::Store> open_store(const config::Config& cfg);

// `queue list --domain D --state S`: empty = any.
struct ListFilter {
    std::string domain;
    std::string state;
};
void list(const Options& opts, const ListFilter& filter);

}  // namespace mailward::cli::queue_cli
