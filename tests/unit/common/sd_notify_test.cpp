// Tests of common::sd (sd_notify(3)): each state as one datagram on a NOTIFY_SOCKET of the test's
// own (a path socket in a temp dir), and nothing at all without NOTIFY_SOCKET.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "common/sd_notify.hpp"
#include "temp_dir.hpp"

namespace sd = mailward::common::sd;

namespace {

// A datagram socket bound to dir/notify, NOTIFY_SOCKET pointing at it while it lives.
class Listener {
  public:
    explicit Listener(const std::string& path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        path.copy(a.sun_path, sizeof a.sun_path - 1);
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        timeval tv{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
    }
    ~Listener() {
        ::unsetenv("NOTIFY_SOCKET");
        ::close(fd_);
    }
    std::string receive() {
        char buf[4096];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    }
    bool nothing_pending() {
        char c;
        return ::recv(fd_, &c, 1, MSG_DONTWAIT) < 0;
    }

  private:
    int fd_ = -1;
};

}  // namespace

TEST(SdNotify, EachStateIsOneDatagram) {
    mailward::test::TempDir dir;
    Listener l((dir.path() / "notify").string());
    ASSERT_TRUE(sd::enabled());
    struct Case {
        void (*send)(std::string_view);
        std::vector<std::string> has;
    };
    const std::string pid = std::to_string(::getpid());
    const Case cases[] = {
        {sd::ready, {"READY=1\n", "MAINPID=" + pid + "\n", "STATUS=serving: a b"}},
        {sd::reloading, {"RELOADING=1\n", "MONOTONIC_USEC=", "STATUS=serving: a b"}},
        {sd::stopping, {"STOPPING=1\n", "STATUS=serving: a b"}},
        {sd::status, {"STATUS=serving: a b"}},
    };
    for (const auto& c : cases) {
        c.send("serving: a\nb");  // a newline in the text would start another assignment
        const std::string got = l.receive();
        for (const auto& part : c.has) EXPECT_NE(got.find(part), std::string::npos) << part << " in " << got;
        EXPECT_EQ(got.find("\nb"), std::string::npos) << got;
    }
}

TEST(SdNotify, NothingWithoutNotifySocket) {
    mailward::test::TempDir dir;
    Listener l((dir.path() / "notify").string());
    ::unsetenv("NOTIFY_SOCKET");
    EXPECT_FALSE(sd::enabled());
    sd::ready("x");
    sd::stopping("x");
    EXPECT_TRUE(l.nothing_pending());
}
