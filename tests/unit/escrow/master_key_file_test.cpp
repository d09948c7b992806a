// escrow::ensure_master_key_file, serve's first-start step: a missing key is created (32 random
// bytes, 0600) once; an existing one is refused, with one exact line, when group or others may
// access it, when it is not 32 bytes, or when it cannot be made.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "common/fsutil.hpp"
#include "escrow/keys.hpp"
#include "temp_dir.hpp"

using namespace mailward;
using escrow::EscrowErrc;

TEST(MasterKeyFile, CreatedOnFirstStartThenKept) {
    mailward::test::TempDir dir;
    const auto p = dir.path() / "master.key";
    auto made = escrow::ensure_master_key_file(p);
    ASSERT_TRUE(made) << made.error().message;
    EXPECT_TRUE(*made);
    struct stat st {};
    ASSERT_EQ(::stat(p.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto first = common::read_file(p);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->size(), escrow::kMasterKeyBytes);
    EXPECT_NE(*first, std::string(escrow::kMasterKeyBytes, '\0'));
    // The second start keeps it, and the holder loads it.
    auto again = escrow::ensure_master_key_file(p);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_FALSE(*again);
    EXPECT_EQ(*common::read_file(p), *first);
    auto loaded = escrow::MasterKeyHolder::load(p);
    EXPECT_TRUE(loaded) << loaded.error().message;
}

TEST(MasterKeyFile, RefusalsAreOneExactLine) {
    struct Case {
        const char* name;
        int size;  // bytes written; -1: the parent is a regular file (cannot create); -2: a FIFO; -3: a directory
        mode_t mode;
        EscrowErrc want;      // ok: no specific code (an I/O error)
        std::string message;  // after "PATH: "; a prefix when want is ok
    };
    const Case cases[] = {
        {"world readable", 32, 0644, EscrowErrc::master_key_bad_mode,
         "master key has mode 0644; it must not be readable by group or others (chmod 600)"},
        {"group writable", 32, 0620, EscrowErrc::master_key_bad_mode,
         "master key has mode 0620; it must not be readable by group or others (chmod 600)"},
        {"others executable, wrong size", 5, 0601, EscrowErrc::master_key_bad_mode,
         "master key has mode 0601; it must not be readable by group or others (chmod 600)"},
        {"short", 31, 0600, EscrowErrc::master_key_bad_size, "master key must be 32 bytes, found 31"},
        {"empty", 0, 0400, EscrowErrc::master_key_bad_size, "master key must be 32 bytes, found 0"},
        {"long", 64, 0600, EscrowErrc::master_key_bad_size, "master key must be 32 bytes, found 64"},
        {"cannot create", -1, 0600, EscrowErrc::ok, "cannot create master key: "},
        // Reading a FIFO would wait for a writer: refused at once instead.
        {"a FIFO", -2, 0600, EscrowErrc::master_key_unreadable, "master key is not a regular file"},
        {"a directory", -3, 0700, EscrowErrc::master_key_unreadable, "master key is not a regular file"},
    };
    mailward::test::TempDir dir;
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        auto p = dir.path() / (std::string("key-") + c.name);
        if (c.size >= 0) {
            std::ofstream(p, std::ios::binary) << std::string(static_cast<std::size_t>(c.size), 'k');
            ASSERT_EQ(::chmod(p.c_str(), c.mode), 0);
        } else if (c.size == -1) {
            std::ofstream(p) << "a file, not a directory";
            p /= "master.key";
        } else if (c.size == -2) {
            ASSERT_EQ(::mkfifo(p.c_str(), c.mode), 0);
        } else {
            ASSERT_EQ(::mkdir(p.c_str(), c.mode), 0);
        }
        auto r = escrow::ensure_master_key_file(p);
        ASSERT_FALSE(r);
        const std::string& error = r.error().message;
        const std::string want = p.string() + ": " + c.message;
        if (c.want == EscrowErrc::ok) {
            EXPECT_EQ(error.rfind(want, 0), 0u) << error;
            EXPECT_GT(error.size(), want.size()) << "names the cause: " << error;
        } else {
            EXPECT_EQ(r.error().code, c.want) << error;
            EXPECT_EQ(error, want);
        }
        EXPECT_EQ(error.find('\n'), std::string::npos) << error;
    }
}
