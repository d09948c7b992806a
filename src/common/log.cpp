// Sets up the process-wide spdlog logger on stderr.
#include "common/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace mailward::common {

void init_logging(std::string_view level) {
    spdlog::drop("mailward");  // idempotent: the CLI sets a quiet logger, serve replaces it
    auto logger = spdlog::stderr_color_mt("mailward");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    auto lvl = spdlog::level::from_str(std::string(level));
    if (lvl == spdlog::level::off && level != "off") lvl = spdlog::level::info;
    logger->set_level(lvl);
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
}

void set_log_process_name(std::string_view name) {
    spdlog::default_logger()->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [" + std::string(name) + "] %v");
}

}  // namespace mailward::common
