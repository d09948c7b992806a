// Logging: human-readable lines on stderr through spdlog, levels from the config. Structured
// delivery records (one JSON object per line) are written by the delivery library, not here.
// Under systemd (stderr is the journal's stream: JOURNAL_STREAM, see systemd.exec(5)) a line has
// no timestamp of its own and starts with its syslog priority, "<6>" (sd-daemon(3)); otherwise
// "2026-01-02T03:04:05.678 info ...".
#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

namespace mailward::common {

// level is one of trace, debug, info, warn, error; unknown values fall back to info.
void init_logging(std::string_view level);

// In one of serve's child processes: its lines carry the process name after the level
// ("... info [mailward-portal] ..."), so that lines on the shared stderr say who wrote them.
void set_log_process_name(std::string_view name);

// Whether journal_stream (JOURNAL_STREAM's "DEVICE:INODE") names the file open on fd: systemd's
// rule for "stderr goes to the journal" (a redirected stderr inherits the variable, not the
// stream). Unparsable or absent: false.
bool is_journal_stream(const char* journal_stream, int fd);

// The sd-daemon priority prefix of an spdlog level: critical "<2>", error "<3>", warn "<4>",
// info "<6>", debug and trace "<7>".
std::string_view journal_prefix(spdlog::level::level_enum level);

}  // namespace mailward::common
