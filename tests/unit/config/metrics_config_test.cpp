// [metrics] listen: none by default (no port opened); an endpoint is kept canonical; a bad one is a
// file:line error naming the key.
#include <gtest/gtest.h>

#include "config/config.hpp"

using namespace mailward::config;

TEST(MetricsConfig, NoneByDefault) {
    ConfigError err;
    auto c = parse("", "t.toml", err);
    ASSERT_TRUE(c) << err.message;
    EXPECT_EQ(c->metrics.listen, "");
}

TEST(MetricsConfig, Endpoints) {
    struct Case {
        const char* value;
        const char* want;  // nullptr: an error containing problem
        const char* problem;
    };
    const Case cases[] = {
        {"\"127.0.0.1:9464\"", "127.0.0.1:9464", nullptr},
        {"\"[::1]:9464\"", "[::1]:9464", nullptr},
        {"\"127.0.0.1\"", nullptr, "t.toml:2: key 'metrics.listen': bad endpoint"},
        {"\"127.0.0.1:0\"", nullptr, "port 0 is out of range"},
        {"9464", nullptr, "t.toml:2: key 'metrics.listen': wrong type"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.value);
        ConfigError err;
        auto cfg = parse(std::string("[metrics]\nlisten = ") + c.value + "\n", "t.toml", err);
        if (c.want) {
            ASSERT_TRUE(cfg) << err.message;
            EXPECT_EQ(cfg->metrics.listen, c.want);
        } else {
            ASSERT_FALSE(cfg);
            EXPECT_NE(err.message.find(c.problem), std::string::npos) << err.message;
        }
    }
}
