// [server] user: the unprivileged system user `serve` drops to. Table-driven: good names are
// taken as written, the default is "mailward", and an empty name, root, or a name with characters
// useradd refuses is a file:line error naming the key.
#include <gtest/gtest.h>

#include "config/config.hpp"

using namespace mailward::config;

TEST(ServerUser, DefaultIsMailward) {
    ConfigError err;
    auto c = parse("", "t.toml", err);
    ASSERT_TRUE(c) << err.message;
    EXPECT_EQ(c->server.user, "mailward");
}

TEST(ServerUser, GoodNames) {
    const char* names[] = {"mailward", "_mailward", "mw-relay", "mail.ward", "u1", "Mailward"};
    for (const char* name : names) {
        SCOPED_TRACE(name);
        ConfigError err;
        auto c = parse(std::string("[server]\nuser = \"") + name + "\"\n", "t.toml", err);
        ASSERT_TRUE(c) << err.message;
        EXPECT_EQ(c->server.user, name);
    }
}

TEST(ServerUser, BadNames) {
    struct Case {
        const char* toml;
        const char* want;
    };
    const Case cases[] = {
        {"[server]\nuser = \"\"\n", "t.toml:2: key 'server.user': empty string"},
        {"[server]\nuser = \"root\"\n", "t.toml:2: key 'server.user': must not be root"},
        {"[server]\nuser = \"-x\"\n", "t.toml:2: key 'server.user': \"-x\" is not a user name"},
        {"[server]\nuser = \"mail ward\"\n", "is not a user name"},
        {"[server]\nuser = \"a/b\"\n", "is not a user name"},
        {"[server]\nuser = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n", "is not a user name"},  // 33 chars
        {"[server]\n\nuser = 0\n", "t.toml:3: key 'server.user': wrong type"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.toml);
        ConfigError err;
        auto r = parse(c.toml, "t.toml", err);
        EXPECT_FALSE(r);
        EXPECT_NE(err.message.find(c.want), std::string::npos) << err.message;
    }
}
