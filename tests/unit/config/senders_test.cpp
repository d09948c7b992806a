// Sender patterns (parse_sender_pattern, sender_allowed) and the abuse-limit keys of [submission].
#include <gtest/gtest.h>

#include "config/config.hpp"

using namespace mailward::config;

TEST(SenderPattern, Parse) {
    struct Case {
        const char* in;
        bool allow_any;
        const char* out;  // nullptr = rejected
    } cases[] = {
        {"Alice@Example.ORG", false, "alice@example.org"},
        {"@example.org", false, "@example.org"},
        {"*", true, "*"},
        {"*", false, nullptr},
        {"", false, nullptr},
        {"alice", false, nullptr},
        {"alice@", false, nullptr},
        {"a b@example.org", false, nullptr},
        {"a@example.org\r\nx", false, nullptr},
        {"<a@example.org>", false, nullptr},
        {"a@b@c", false, nullptr},
        {"a@.example.org", false, nullptr},
    };
    for (const auto& c : cases) {
        auto p = parse_sender_pattern(c.in, c.allow_any);
        if (c.out == nullptr) {
            EXPECT_FALSE(p.has_value()) << c.in;
        } else {
            ASSERT_TRUE(p.has_value()) << c.in;
            EXPECT_EQ(*p, c.out);
        }
    }
}

TEST(SenderPattern, Allowed) {
    const std::vector<std::string> pats{"alice@example.org", "@corp.example"};
    struct Case {
        const char* addr;
        bool ok;
    } cases[] = {
        {"alice@example.org", true},
        {"ALICE@Example.Org", true},
        {"bob@example.org", false},
        {"x@corp.example", true},
        {"x@sub.corp.example", false},
        {"x@evilcorp.example", false},
        {"", false},
        {"alice@example.org.evil", false},
    };
    for (const auto& c : cases) EXPECT_EQ(sender_allowed(pats, c.addr), c.ok) << c.addr;
    EXPECT_TRUE(sender_allowed({"*"}, "anyone@anywhere.example"));
    EXPECT_FALSE(sender_allowed({}, "anyone@anywhere.example"));
}

TEST(SenderPattern, AbuseKeysParseAndValidate) {
    ConfigError err;
    auto c = parse(
        "[submission]\nipv4_prefix = 24\nipv6_prefix = 48\nmax_junk_commands = 5\n"
        "max_session_time = \"30m\"\nmax_auth_failures = 3\nauth_failure_window = \"1m\"\n"
        "stress_command_timeout = \"5s\"\nmax_hops = 30\nsender_login_match = false\n"
        "trusted_senders = [\"App@Example.com\", \"@example.net\"]\n",
        "t.toml", err);
    ASSERT_TRUE(c.has_value()) << err.message;
    EXPECT_EQ(c->submission.ipv4_prefix, 24u);
    EXPECT_EQ(c->submission.ipv6_prefix, 48u);
    EXPECT_EQ(c->submission.max_junk_commands, 5u);
    EXPECT_EQ(c->submission.max_session_time, std::chrono::minutes(30));
    EXPECT_EQ(c->submission.max_auth_failures, 3u);
    EXPECT_EQ(c->submission.auth_failure_window, std::chrono::minutes(1));
    EXPECT_EQ(c->submission.stress_command_timeout, std::chrono::seconds(5));
    EXPECT_EQ(c->submission.max_hops, 30u);
    EXPECT_FALSE(c->submission.sender_login_match);
    EXPECT_EQ(c->submission.trusted_senders, (std::vector<std::string>{"app@example.com", "@example.net"}));

    const Config d = defaults();
    EXPECT_EQ(d.submission.ipv6_prefix, 64u);
    EXPECT_EQ(d.submission.ipv4_prefix, 32u);
    EXPECT_TRUE(d.submission.sender_login_match);
    EXPECT_EQ(d.submission.max_hops, 50u);

    struct Bad {
        const char* toml;
        const char* msg;
    } bad[] = {
        {"[submission]\nipv4_prefix = 33\n", "t.toml:2: key 'submission.ipv4_prefix': prefix length 33"},
        {"[submission]\nipv6_prefix = 0\n", "t.toml:2: key 'submission.ipv6_prefix': prefix length 0"},
        {"[submission]\ntrusted_senders = [\"nobody\"]\n", "key 'submission.trusted_senders': bad sender pattern"},
        {"[submission]\nmax_hops = 0\n", "key 'submission.max_hops': value 0"},
    };
    for (const auto& b : bad) {
        ConfigError e;
        EXPECT_FALSE(parse(b.toml, "t.toml", e).has_value()) << b.toml;
        EXPECT_NE(e.message.find(b.msg), std::string::npos) << e.message;
    }
}
