// [sendmail] (local submission by `mailward sendmail`): the socket path (default under /run/mailward,
// relative to the config file's directory, "" = none) and trusted_users (system user names), with
// file:line errors naming the key; load_without_file_checks() reads a file whose key files it cannot open.
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "temp_dir.hpp"

using namespace mailward::config;

TEST(SendmailConfig, Defaults) {
    ConfigError err;
    auto c = parse("", "t.toml", err);
    ASSERT_TRUE(c) << err.message;
    EXPECT_EQ(c->sendmail.socket, "/run/mailward/sendmail.sock");
    EXPECT_TRUE(c->sendmail.trusted_users.empty());
}

TEST(SendmailConfig, GoodValues) {
    struct Case {
        const char* toml;
        const char* socket;
        std::vector<std::string> trusted;
    };
    const Case cases[] = {
        {"[sendmail]\nsocket = \"/tmp/x/s.sock\"\n", "/tmp/x/s.sock", {}},
        {"[sendmail]\nsocket = \"\"\n", "", {}},
        {"[sendmail]\ntrusted_users = [\"www-data\", \"_git\", \"u.1\"]\n",
         "/run/mailward/sendmail.sock",
         {"www-data", "_git", "u.1"}},
        {"[sendmail]\ntrusted_users = []\n", "/run/mailward/sendmail.sock", {}},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.toml);
        ConfigError err;
        auto r = parse(c.toml, "t.toml", err);
        ASSERT_TRUE(r) << err.message;
        EXPECT_EQ(r->sendmail.socket, c.socket);
        EXPECT_EQ(r->sendmail.trusted_users, c.trusted);
    }
}

TEST(SendmailConfig, BadValues) {
    struct Case {
        const char* toml;
        const char* want;
    };
    const Case cases[] = {
        {"[sendmail]\nsocket = 3\n", "t.toml:2: key 'sendmail.socket': wrong type"},
        {"[sendmail]\n\ntrusted_users = \"www-data\"\n", "t.toml:3: key 'sendmail.trusted_users': wrong type"},
        {"[sendmail]\ntrusted_users = [\"bad name\"]\n", "t.toml:2: key 'sendmail.trusted_users': bad user name"},
        {"[sendmail]\ntrusted_users = [\"-x\"]\n", "bad user name"},
        {"[sendmail]\ntrusted_users = [7]\n", "wrong type"},
        {"[sendmail]\nsockt = \"/x\"\n", "unknown key"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.toml);
        ConfigError err;
        EXPECT_FALSE(parse(c.toml, "t.toml", err));
        EXPECT_NE(err.message.find(c.want), std::string::npos) << err.message;
    }
}

TEST(SendmailConfig, RelativeSocketIsBesideTheFile) {
    mailward::test::TempDir dir;
    const auto file = dir.write("mw.toml", "[sendmail]\nsocket = \"run/s.sock\"\n");
    ConfigError err;
    auto c = load(file, err);
    ASSERT_TRUE(c) << err.message;
    EXPECT_EQ(c->sendmail.socket, dir.path() / "run/s.sock");
}

// A client cannot read the submission key (0600 root in production; here: missing): load() refuses
// the file, load_without_file_checks() reads it.
TEST(SendmailConfig, ClientLoadDoesNotOpenKeyFiles) {
    mailward::test::TempDir dir;
    const auto file = dir.write("mw.toml",
                                "[submission]\ncert = \"missing.crt\"\nkey = \"missing.key\"\n"
                                "[sendmail]\nsocket = \"/tmp/s.sock\"\n");
    ConfigError err;
    EXPECT_FALSE(load(file, err));
    EXPECT_NE(err.message.find("submission.cert"), std::string::npos) << err.message;
    auto c = load_without_file_checks(file, err);
    ASSERT_TRUE(c) << err.message;
    EXPECT_EQ(c->sendmail.socket, "/tmp/s.sock");
}
