// common/privilege.hpp: user lookup (root and unknown names refused), the one-way drop (in a forked
// child: afterwards setuid(0) fails, all ids are the user's, no_new_privs is set, no capability is
// left), and chown_tree (everything but the kept paths, symlinks not followed). The drop and chown
// need root: they are skipped when the tests run as another user.
#include "common/privilege.hpp"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "temp_dir.hpp"

using namespace mailward;

TEST(Privilege, FindUser) {
    EXPECT_EQ(common::find_user("root").error(), common::Errc::invalid_argument);
    EXPECT_EQ(common::find_user("").error(), common::Errc::invalid_argument);
    EXPECT_EQ(common::find_user("mw-no-such-user-x").error(), common::Errc::not_found);
    auto nobody = common::find_user("nobody");
    ASSERT_TRUE(nobody) << nobody.error().message();
    EXPECT_NE(nobody->uid, 0u);
    EXPECT_EQ(nobody->name, "nobody");
}

TEST(Privilege, DropIsForGood) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    auto nobody = common::find_user("nobody");
    ASSERT_TRUE(nobody);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (!common::drop_privileges(*nobody)) ::_exit(10);
        if (::setuid(0) == 0 || ::seteuid(0) == 0) ::_exit(11);
        if (::getuid() != nobody->uid || ::geteuid() != nobody->uid || ::getgid() != nobody->gid) ::_exit(12);
        if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) ::_exit(13);
        if (::access("/proc/1/root", R_OK) == 0) ::_exit(14);  // root's, 0555 but needs CAP_SYS_PTRACE
        ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "10 drop failed, 11 root came back, 12 ids, 13 no_new_privs, 14 caps";
}

TEST(Privilege, ChownTreeKeepsWhatItIsTold) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    auto nobody = common::find_user("nobody");
    ASSERT_TRUE(nobody);
    mailward::test::TempDir dir;
    const auto d = dir.path();
    std::filesystem::create_directories(d / "spool");
    std::ofstream(d / "spool" / "a.seg") << "x";
    std::ofstream(d / "mailward.db") << "x";
    std::ofstream(d / "master.key") << "k";
    std::ofstream(dir.path().parent_path() / (d.filename().string() + "-outside")) << "o";
    const auto outside = dir.path().parent_path() / (d.filename().string() + "-outside");
    std::filesystem::create_symlink(outside, d / "link");
    ASSERT_TRUE(common::chown_tree(d, *nobody, {d / "master.key"}));
    auto owner = [](const std::filesystem::path& p) {
        struct stat st {};
        EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
        return st.st_uid;
    };
    EXPECT_EQ(owner(d), nobody->uid);
    EXPECT_EQ(owner(d / "spool"), nobody->uid);
    EXPECT_EQ(owner(d / "spool" / "a.seg"), nobody->uid);
    EXPECT_EQ(owner(d / "mailward.db"), nobody->uid);
    EXPECT_EQ(owner(d / "link"), nobody->uid);  // the link itself
    EXPECT_EQ(owner(d / "master.key"), 0u);
    EXPECT_EQ(owner(outside), 0u) << "a symlink's target is not followed";
    std::filesystem::remove(outside);
}

// CreateFilesAs: files made in its scope belong to the user (as SQLite's -wal and -shm files made
// by a child of serve before its drop must), and root is back afterwards (for binding ports).
TEST(Privilege, CreateFilesAsTheUserThenRootAgain) {
    auto nobody = common::find_user("nobody");
    ASSERT_TRUE(nobody);
    if (::geteuid() != 0) {
        common::CreateFilesAs as(*nobody);
        EXPECT_FALSE(as.switched());  // not root: nothing to switch
        return;
    }
    test::TempDir dir;
    ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);
    const auto file = dir.path() / "made-as-user";
    const pid_t pid = ::fork();  // the switch is process-wide: keep it out of the test runner
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        {
            common::CreateFilesAs as(*nobody);
            if (!as.switched() || ::geteuid() != nobody->uid || ::getegid() != nobody->gid) ::_exit(10);
            std::ofstream(file) << "x";
        }
        if (::geteuid() != 0 || ::getegid() != 0) ::_exit(11);
        ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, nobody->uid);
    {
        common::CreateFilesAs none(std::nullopt);
        EXPECT_FALSE(none.switched());
    }
}
