// Logging: human-readable lines on stderr through spdlog, levels from the config. Structured
// delivery records (one JSON object per line) are written by the delivery library, not here.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace mailward::common {

// level is one of trace, debug, info, warn, error; unknown values fall back to info.
void init_logging(std::string_view level);

// In one of serve's child processes: its lines carry the process name after the level
// ("... info [mailward-portal] ..."), so that lines on the shared stderr say who wrote them.
void set_log_process_name(std::string_view name);

}  // namespace mailward::common
