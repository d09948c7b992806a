// serve's process plumbing (common/process.hpp): a forked child's name, exit status and signal
// mask, waiting with a deadline (a child that ignores SIGTERM is killed), and the wake pipe (one
// byte per wake-up, never blocking the writer).
#include "common/process.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

using namespace mailward;
using namespace std::chrono_literals;

namespace {

TEST(ProcessTest, ForkChildRunsTheBodyUnderItsNameAndExitsWithItsStatus) {
    struct Case {
        int code;
    };
    for (const Case c : {Case{0}, Case{1}, Case{7}}) {
        auto pid = common::fork_child("mw-test-child", [&]() -> int {
            char name[16] = {};
            ::prctl(PR_GET_NAME, name, 0, 0, 0);
            if (std::strcmp(name, "mw-test-child") != 0) return 99;
            int sig = 0;
            if (::prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0) != 0 || sig != SIGKILL) return 98;
            return c.code;
        });
        ASSERT_TRUE(pid) << pid.error().message();
        const int status = common::wait_child(*pid, 10s);
        ASSERT_TRUE(WIFEXITED(status)) << status;
        EXPECT_EQ(WEXITSTATUS(status), c.code);
        EXPECT_EQ(common::exit_text(status), "exit status " + std::to_string(c.code));
    }
}

TEST(ProcessTest, AnExceptionInTheBodyIsExitStatusOne) {
    auto pid = common::fork_child("mw-test-throw", []() -> int { throw std::runtime_error("boom"); });
    ASSERT_TRUE(pid);
    const int status = common::wait_child(*pid, 10s);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 1);
}

TEST(ProcessTest, WaitChildKillsAChildThatDoesNotStop) {
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    auto pid = common::fork_child("mw-test-stuck", [&]() -> int {
        ::signal(SIGTERM, SIG_IGN);
        (void)!::write(ready[1], "r", 1);
        for (;;) ::pause();
    });
    ASSERT_TRUE(pid);
    char r = 0;
    ASSERT_EQ(::read(ready[0], &r, 1), 1);  // SIGTERM is ignored from here on
    ::close(ready[0]);
    ::close(ready[1]);
    ::kill(*pid, SIGTERM);
    const auto start = std::chrono::steady_clock::now();
    const int status = common::wait_child(*pid, 300ms);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
    ASSERT_TRUE(WIFSIGNALED(status));
    EXPECT_EQ(WTERMSIG(status), SIGKILL);
    EXPECT_EQ(common::exit_text(status), "signal 9");
}

TEST(ProcessTest, BlockedStopSignalsWaitUntilUnblocked) {
    common::block_stop_signals();
    auto pid = common::fork_child("mw-test-mask", []() -> int {
        ::raise(SIGTERM);  // pending: the mask is inherited
        ::raise(SIGHUP);   // likewise (a reload during start-up)
        return 5;          // reached only because SIGTERM and SIGHUP waited
    });
    common::unblock_stop_signals();
    ASSERT_TRUE(pid);
    const int status = common::wait_child(*pid, 10s);
    ASSERT_TRUE(WIFEXITED(status)) << "SIGTERM or SIGHUP killed the child while blocked";
    EXPECT_EQ(WEXITSTATUS(status), 5);
}

TEST(ProcessTest, TheWakePipeCarriesOneBytePerWakeAndNeverBlocks) {
    auto p = common::make_wake_pipe();
    ASSERT_TRUE(p);
    EXPECT_TRUE(::fcntl(p->write_fd, F_GETFL) & O_NONBLOCK);
    EXPECT_TRUE(::fcntl(p->read_fd, F_GETFD) & FD_CLOEXEC);
    common::wake(p->write_fd);
    common::wake(p->write_fd);
    char buf[8];
    EXPECT_EQ(::read(p->read_fd, buf, sizeof buf), 2);
    // A reader that does not keep up: the writer goes on (the pipe full means a wake-up is pending).
    for (int i = 0; i < 200000; ++i) common::wake(p->write_fd);
    EXPECT_GT(::read(p->read_fd, buf, sizeof buf), 0);
    // The reader gone (SIGPIPE ignored, as fork_child does in the children): no error, no hang.
    ::close(p->read_fd);
    auto old = ::signal(SIGPIPE, SIG_IGN);
    common::wake(p->write_fd);
    ::signal(SIGPIPE, old);
    ::close(p->write_fd);
}

}  // namespace
