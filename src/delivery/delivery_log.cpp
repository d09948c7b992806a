// Appends JSON lines to the delivery log, one flush per line so that a crash loses at most the line
// being written.
#include "delivery/delivery_log.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

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

}  // namespace mailward::delivery
