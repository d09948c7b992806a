// The [portal] section: its documented defaults, every key read into its field, and bad values
// reported with the file, the line and the key.
#include <gtest/gtest.h>

#include "config/config.hpp"

using namespace mailward::config;
using namespace std::chrono_literals;

namespace {

TEST(ConfigPortal, Defaults) {
    const PortalConfig p = defaults().portal;
    EXPECT_EQ(p.max_connections, 1000u);
    EXPECT_EQ(p.max_connections_per_address, 16u);
    EXPECT_EQ(p.header_timeout, 10s);
    EXPECT_EQ(p.body_timeout, 2min);
    EXPECT_EQ(p.max_form_size, 16384u);
    EXPECT_EQ(p.max_reply_size, 10485760u);
    EXPECT_EQ(p.replies_per_message, 5u);
    EXPECT_EQ(p.replies_per_session, 3u);
    EXPECT_EQ(p.reply_window, 1h);
    EXPECT_EQ(p.max_replies_size, 52428800u);
}

TEST(ConfigPortal, EveryKeyIsRead) {
    ConfigError err;
    auto cfg = parse(
        "[portal]\nmax_connections = 50\nmax_connections_per_address = 4\nheader_timeout = \"3s\"\n"
        "body_timeout = \"30s\"\nmax_form_size = 4096\nmax_reply_size = 1000000\n"
        "replies_per_message = 7\nreplies_per_session = 2\nreply_window = \"30m\"\n"
        "max_replies_size = 9000000\n",
        "p.toml", err);
    ASSERT_TRUE(cfg.has_value()) << err.message;
    const PortalConfig& p = cfg->portal;
    EXPECT_EQ(p.max_connections, 50u);
    EXPECT_EQ(p.max_connections_per_address, 4u);
    EXPECT_EQ(p.header_timeout, 3s);
    EXPECT_EQ(p.body_timeout, 30s);
    EXPECT_EQ(p.max_form_size, 4096u);
    EXPECT_EQ(p.max_reply_size, 1000000u);
    EXPECT_EQ(p.replies_per_message, 7u);
    EXPECT_EQ(p.replies_per_session, 2u);
    EXPECT_EQ(p.reply_window, 30min);
    EXPECT_EQ(p.max_replies_size, 9000000u);
}

TEST(ConfigPortal, BadValuesNameFileLineAndKey) {
    struct Row {
        std::string toml, want;
    } rows[] = {
        {"[portal]\nmax_connections_per_address = 0\n",
         "p.toml:2: key 'portal.max_connections_per_address': value 0 is not positive"},
        {"[portal]\n\nheader_timeout = \"0s\"\n", "p.toml:3: key 'portal.header_timeout'"},
        {"[portal]\nreply_window = 60\n", "p.toml:2: key 'portal.reply_window': wrong type"},
        {"[portal]\nmax_form_size = -1\n", "p.toml:2: key 'portal.max_form_size'"},
        {"[portal]\nreplies_per_mesage = 2\n",
         "p.toml:2: key 'portal.replies_per_mesage': unknown key (did you mean 'replies_per_message'?)"},
    };
    for (const auto& r : rows) {
        ConfigError err;
        EXPECT_FALSE(parse(r.toml, "p.toml", err).has_value()) << r.toml;
        EXPECT_NE(err.message.find(r.want), std::string::npos) << err.message;
    }
}

}  // namespace
