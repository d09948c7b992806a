// Process plumbing for serve's privilege separation (docs/design.md, "Process model"; OpenSMTPD's
// smtp/queue split is the model): forking a named child that dies with its parent
// (PR_SET_PDEATHSIG), waiting for it with a deadline, and the wake pipe a child uses to tell the
// parent "a message was queued" (one byte, never blocking). Linux; no Asio here (serve reads the
// pipe on its io_context).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace mailward::common {

// The name ps, top and /proc/PID/comm show (PR_SET_NAME; at most 15 bytes are kept).
void set_process_name(std::string_view name);

// Forks a child that runs body() and exits with its return value (std::_Exit, after flushing the
// log: the parent's atexit handlers and destructors do not run twice). The child is named name,
// gets SIGKILL when the parent dies (and exits at once if the parent died before that was set),
// and starts with default SIGINT/SIGTERM/SIGCHLD dispositions (and the parent's signal mask). Call while the process
// has one thread: only the calling thread exists in the child. Returns the child's pid in the parent.
Result<pid_t> fork_child(std::string_view name, const std::function<int()>& body);

// SIGINT, SIGTERM and SIGHUP held pending (sigprocmask) until unblock_stop_signals(): serve blocks
// them first thing and unblocks them once its signal_sets are in place, so that a SIGTERM or SIGHUP
// during start-up (the children listen before the parent is ready) is handled, not fatal. Threads started in
// between inherit the block, which is what Asio's signal handling wants. Children inherit it too.
void block_stop_signals();
void unblock_stop_signals();

// In a child of fork_child after it changed its uid or gid (drop_privileges): the kernel clears the
// parent-death signal on such a change, so set it again. Returns false when the parent has already
// died (the child should exit).
bool rearm_parent_death_signal();

// glibc malloc tuned for a server that frees whole batches of message bodies at once: a fixed trim
// threshold (8 MiB) and mmap threshold (4 MiB) instead of glibc's adaptive defaults (from 128 KiB).
// With the defaults the submission process gave memory back with madvise after most batches (about
// 0.4 calls per accepted message under strace) and faulted it in again; fixed, its accept rate went
// from 9800/s to 12300/s (bench/RESULTS.md, session 6). Call before any thread or child exists:
// both inherit the setting.
void tune_allocator();

// The open-files limit (RLIMIT_NOFILE) as raise_fd_limit found and left it.
struct FdLimit {
    unsigned long before = 0;  // the soft limit found
    unsigned long after = 0;   // the soft limit now
    unsigned long hard = 0;
};
// Raises the soft open-files limit to want, or to the hard limit when that is lower; never lowers
// it. Every connection is a descriptor: systemd's default soft limit of 1024 (hard 524288) would
// have the submission process fail accept() with EMFILE long before max_connections = 1000 sessions
// plus its store and listeners. Raising the soft limit up to the hard one needs no privilege. Call
// before any child exists: they inherit it.
FdLimit raise_fd_limit(unsigned long want);

// A child's exit, for the log: "exit status N" or "signal N".
std::string exit_text(int status);

// Waits for pid to end, up to timeout; then SIGKILLs it and reaps it. Returns its wait status.
int wait_child(pid_t pid, std::chrono::milliseconds timeout);

// A pipe from a child to its parent, both ends O_CLOEXEC | O_NONBLOCK.
struct WakePipe {
    int read_fd = -1;   // the parent's
    int write_fd = -1;  // the child's
};
Result<WakePipe> make_wake_pipe();

// Writes one byte to a wake pipe. A full pipe already holds unread wake-ups, and a closed one
// means the parent is gone: neither is an error (the delivery engine also polls).
void wake(int write_fd) noexcept;

}  // namespace mailward::common
