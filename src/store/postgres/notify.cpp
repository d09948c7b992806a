// The work hint over PostgreSQL LISTEN/NOTIFY (see internal.hpp, WorkListener): wakes an idle node
// when any node's writer committed new messages. Polling stays the guarantee (docs/design.md,
// "PostgreSQL store"), so a lost notification or a listener that cannot connect only delays work.
#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "store/postgres/internal.hpp"

namespace mailward::store::postgres {

WorkListener::WorkListener(std::string dsn, std::function<void()> hint) : dsn_(std::move(dsn)), hint_(std::move(hint)) {
    if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
        spdlog::warn("store: no PostgreSQL work hint (pipe: {}); idle nodes poll", std::strerror(errno));
        stop_pipe_[0] = stop_pipe_[1] = -1;
        return;
    }
    thread_ = std::thread([this] { run(); });
}

WorkListener::~WorkListener() {
    if (stop_pipe_[1] >= 0) {
        const char b = 1;
        [[maybe_unused]] auto n = ::write(stop_pipe_[1], &b, 1);
    }
    if (thread_.joinable()) thread_.join();
    for (int fd : stop_pipe_)
        if (fd >= 0) ::close(fd);
}

bool WorkListener::wait_stop(int timeout_ms) {
    pollfd p{stop_pipe_[0], POLLIN, 0};
    for (;;) {
        int r = ::poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR) continue;
        return r > 0;
    }
}

void WorkListener::run() {
    const std::string listen = std::string("LISTEN ") + kWorkChannel;
    bool down = false;  // logged once per outage
    for (;;) {
        auto c = Conn::open(dsn_);
        if (c && c->command(listen.c_str())) {
            if (down) spdlog::info("store: listening for work from other nodes again");
            down = false;
            hint_();
            for (;;) {
                pollfd fds[2] = {{c->socket(), POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
                int r = ::poll(fds, 2, -1);
                if (r < 0 && errno == EINTR) continue;
                if (r < 0 || fds[1].revents) return;
                auto n = c->notifications();
                if (!n) break;
                if (*n > 0) hint_();
            }
        }
        if (!down)
            spdlog::warn(
                "store: not listening for work from other nodes (PostgreSQL connection lost); "
                "polling, trying again every 5 s");
        down = true;
        if (wait_stop(5000)) return;
    }
}

}  // namespace mailward::store::postgres
