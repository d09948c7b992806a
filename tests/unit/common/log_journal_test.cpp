// Journal logging (common/log.hpp): JOURNAL_STREAM matched against a descriptor's device and
// inode (systemd's rule), and the sd-daemon priority prefixes per level.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/log.hpp"

using namespace mailward::common;

TEST(JournalLog, StreamMatchesDeviceAndInode) {
    std::FILE* f = std::tmpfile();
    ASSERT_NE(f, nullptr);
    const int fd = ::fileno(f);
    struct stat st {};
    ASSERT_EQ(::fstat(fd, &st), 0);
    const std::string good = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    struct Case {
        std::string value;
        bool null;
        bool expected;
    };
    const Case cases[] = {
        {good, false, true},
        {"", true, false},
        {"", false, false},
        {std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1), false, false},
        {std::to_string(st.st_dev + 1) + ":" + std::to_string(st.st_ino), false, false},
        {good + "x", false, false},
        {":" + std::to_string(st.st_ino), false, false},
        {std::to_string(st.st_dev) + ":", false, false},
        {"garbage", false, false},
    };
    for (const auto& c : cases)
        EXPECT_EQ(is_journal_stream(c.null ? nullptr : c.value.c_str(), fd), c.expected) << c.value;
    EXPECT_FALSE(is_journal_stream(good.c_str(), -1));  // no such descriptor
    std::fclose(f);
}

TEST(JournalLog, PriorityPrefixes) {
    struct Case {
        spdlog::level::level_enum level;
        const char* prefix;
    };
    const Case cases[] = {
        {spdlog::level::critical, "<2>"}, {spdlog::level::err, "<3>"},   {spdlog::level::warn, "<4>"},
        {spdlog::level::info, "<6>"},     {spdlog::level::debug, "<7>"}, {spdlog::level::trace, "<7>"},
    };
    for (const auto& c : cases) EXPECT_EQ(journal_prefix(c.level), c.prefix);
}
