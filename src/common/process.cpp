// Forking serve's children (name, parent-death signal, exit without the parent's atexit work),
// waiting for them with a deadline, and the wake pipe (one byte per wake-up, non-blocking).
#include "common/process.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <thread>

namespace mailward::common {
namespace {

error_code sys_error(int err) { return error_code(err, boost::system::system_category()); }

pid_t g_parent = 0;  // in a child of fork_child: the parent's pid

}  // namespace

void tune_allocator() {
    (void)::mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
    (void)::mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
}

FdLimit raise_fd_limit(unsigned long want) {
    struct rlimit rl {};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return {};
    FdLimit out{rl.rlim_cur, rl.rlim_cur, rl.rlim_max};
    const rlim_t target = std::min<rlim_t>(want, rl.rlim_max);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < target) {
        rl.rlim_cur = target;
        if (::setrlimit(RLIMIT_NOFILE, &rl) == 0) out.after = target;
    }
    return out;
}

void set_process_name(std::string_view name) {
    char buf[16] = {};
    name.copy(buf, sizeof buf - 1);
    (void)::prctl(PR_SET_NAME, buf, 0, 0, 0);
}

Result<pid_t> fork_child(std::string_view name, const std::function<int()>& body) {
    const pid_t parent = ::getpid();
    spdlog::default_logger()->flush();
    const pid_t pid = ::fork();
    if (pid < 0) return sys_error(errno);
    if (pid > 0) return pid;
    g_parent = parent;
    set_process_name(name);
    (void)::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (::getppid() != parent) std::_Exit(0);  // the parent died before the line above
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGCHLD, SIG_DFL);
    ::signal(SIGPIPE, SIG_IGN);
    int code = 1;
    try {
        code = body();
    } catch (const std::exception& e) {
        spdlog::critical("{}: {}", name, e.what());
    } catch (...) {
        spdlog::critical("{}: unknown failure", name);
    }
    spdlog::default_logger()->flush();
    std::_Exit(code);
}

namespace {
void mask_stop_signals(int how) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);  // a reload asked for during start-up waits too
    (void)::pthread_sigmask(how, &set, nullptr);
}
}  // namespace

void block_stop_signals() { mask_stop_signals(SIG_BLOCK); }
void unblock_stop_signals() { mask_stop_signals(SIG_UNBLOCK); }

bool rearm_parent_death_signal() {
    (void)::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    return g_parent == 0 || ::getppid() == g_parent;
}

std::string exit_text(int status) {
    if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
    return "status " + std::to_string(status);
}

int wait_child(pid_t pid, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    for (;;) {
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r < 0 && errno != EINTR) return status;  // not ours, or already reaped
        if (std::chrono::steady_clock::now() >= deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    spdlog::warn("process {} did not stop within {} ms; killing it", pid, timeout.count());
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

Result<WakePipe> make_wake_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return sys_error(errno);
    return WakePipe{fds[0], fds[1]};
}

void wake(int write_fd) noexcept {
    const char byte = 1;
    for (;;) {
        const ssize_t n = ::write(write_fd, &byte, 1);
        if (n >= 0 || errno != EINTR) return;  // EAGAIN: a wake-up is pending; EPIPE: parent gone
    }
}

}  // namespace mailward::common
