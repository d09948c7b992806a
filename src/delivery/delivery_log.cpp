// Appends JSON lines to the delivery log, one flush per line so that a crash loses at most the line
// being written; formats the main log's outcome line.
#include "delivery/delivery_log.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "common/log_escape.hpp"

namespace mailward::delivery {

DeliveryLog::~DeliveryLog() {
    if (f_) std::fclose(f_);
}

bool DeliveryLog::open(const std::filesystem::path& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    f_ = ::fdopen(fd, "a");
    if (!f_) {
        ::close(fd);
        return false;
    }
    return true;
}

void DeliveryLog::write(const std::string& json_line) {
    std::lock_guard lk(mu_);
    if (!f_) {
        spdlog::info("delivery {}", json_line);
        return;
    }
    std::fwrite(json_line.data(), 1, json_line.size(), f_);
    std::fputc('\n', f_);
    std::fflush(f_);
}

std::string format_outcome(const OutcomeLine& o) {
    using common::log_escape;
    std::string relay = "none";
    if (!o.relay_host.empty()) {
        relay = log_escape(o.relay_host);
        if (!o.relay_address.empty()) relay += "[" + log_escape(o.relay_address) + "]:" + std::to_string(o.port);
    }
    std::string tls = o.level.empty() ? std::string("none") : log_escape(o.level);
    if (!o.level.empty()) {
        tls += o.tls_version.empty() ? std::string("/none")
                                     : "/" + log_escape(o.tls_version) + "/" + log_escape(o.tls_cipher);
    }
    const double d = o.delay_seconds > 0 ? o.delay_seconds : 0;
    const std::string delay = d < 100 ? fmt::format("{:.2f}", d) : fmt::format("{:.0f}", d);
    return fmt::format("{}: to=<{}>, relay={}, delay={}, tls={}, status={} ({})", log_escape(o.queue_id),
                       log_escape(o.recipient), relay, delay, tls, o.status, log_escape(o.text));
}

}  // namespace mailward::delivery
