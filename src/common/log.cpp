// Sets up the process-wide spdlog logger on stderr, in the journal's form when stderr is the
// journal's stream (log.hpp).
#include "common/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <memory>

namespace mailward::common {
namespace {

// %* in a pattern: the line's syslog priority, "<6>".
class PriorityFlag final : public spdlog::custom_flag_formatter {
  public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        const auto p = journal_prefix(msg.level);
        dest.append(p.data(), p.data() + p.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<PriorityFlag>(); }
};

bool& journal_mode() {
    static bool on = false;
    return on;
}

void apply_pattern(std::string_view name) {
    std::string tag = name.empty() ? std::string() : "[" + std::string(name) + "] ";
    auto f = std::make_unique<spdlog::pattern_formatter>();
    if (journal_mode()) {
        f->add_flag<PriorityFlag>('*').set_pattern("%*" + tag + "%v");
    } else {
        f->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ " + tag + "%v");
    }
    spdlog::default_logger()->set_formatter(std::move(f));
}

}  // namespace

bool is_journal_stream(const char* journal_stream, int fd) {
    if (journal_stream == nullptr) return false;
    char* end = nullptr;
    errno = 0;
    const unsigned long long dev = std::strtoull(journal_stream, &end, 10);
    if (errno != 0 || end == journal_stream || *end != ':') return false;
    const char* ino_text = end + 1;
    const unsigned long long ino = std::strtoull(ino_text, &end, 10);
    if (errno != 0 || end == ino_text || *end != '\0') return false;
    struct stat st {};
    if (::fstat(fd, &st) != 0) return false;
    return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

std::string_view journal_prefix(spdlog::level::level_enum level) {
    switch (level) {
        case spdlog::level::critical: return "<2>";
        case spdlog::level::err: return "<3>";
        case spdlog::level::warn: return "<4>";
        case spdlog::level::info: return "<6>";
        default: return "<7>";
    }
}

void init_logging(std::string_view level) {
    spdlog::drop("mailward");  // idempotent: the CLI sets a quiet logger, serve replaces it
    journal_mode() = is_journal_stream(std::getenv("JOURNAL_STREAM"), 2);
    // The journal has no use for colours.
    auto logger = journal_mode() ? spdlog::stderr_logger_mt("mailward") : spdlog::stderr_color_mt("mailward");
    auto lvl = spdlog::level::from_str(std::string(level));
    if (lvl == spdlog::level::off && level != "off") lvl = spdlog::level::info;
    logger->set_level(lvl);
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
    apply_pattern({});
}

void set_log_process_name(std::string_view name) { apply_pattern(name); }

}  // namespace mailward::common
