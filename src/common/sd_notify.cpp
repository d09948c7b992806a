// sd_notify(3) through libsystemd: one datagram per state change to NOTIFY_SOCKET (the library
// handles abstract and path sockets and the credentials); nothing without NOTIFY_SOCKET.
#include "common/sd_notify.hpp"

#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace mailward::common::sd {
namespace {

// One line of STATUS= text: a newline would start another assignment.
std::string status_line(std::string_view status) {
    std::string s = "STATUS=";
    for (char c : status) s += (c == '\n' || c == '\r') ? ' ' : c;
    return s;
}

void send(const std::string& state) {
    if (!enabled()) return;
    (void)::sd_notify(0, state.c_str());
}

}  // namespace

bool enabled() {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    return socket != nullptr && *socket != '\0';
}

void ready(std::string_view status) {
    send("READY=1\nMAINPID=" + std::to_string(::getpid()) + "\n" + status_line(status));
}

void reloading(std::string_view status) {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    const auto usec =
        static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL + static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\n" + status_line(status));
}

void stopping(std::string_view status) { send("STOPPING=1\n" + status_line(status)); }

void status(std::string_view status) { send(status_line(status)); }

}  // namespace mailward::common::sd
