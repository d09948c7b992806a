// [escrow] code_lockout, code_lockout_max and code_max_failures (issue 11, item 7): defaults,
// values, and errors that name the file, the line and the key.
#include <gtest/gtest.h>

#include "config/config.hpp"

using namespace mailward::config;
using namespace std::chrono_literals;

namespace {

TEST(EscrowCodeKeys, DefaultsValuesAndErrors) {
    struct Case {
        const char* toml;
        bool ok;
        Duration lockout, max;
        std::size_t failures;
        const char* error;
    } cases[] = {
        {"", true, 1h, 24h, 30, ""},
        {"[escrow]\ncode_lockout = \"30m\"\ncode_lockout_max = \"8h\"\ncode_max_failures = 12\n", true, 30min, 8h, 12,
         ""},
        {"[escrow]\ncode_lockout = \"2h\"\ncode_lockout_max = \"1h\"\n",
         false,
         {},
         {},
         0,
         "t.toml:3: key 'escrow.code_lockout_max': shorter than escrow.code_lockout"},
        {"[escrow]\ncode_lockout = \"48h\"\n",
         false,
         {},
         {},
         0,
         "t.toml:2: key 'escrow.code_lockout': longer than escrow.code_lockout_max"},
        {"[escrow]\ncode_max_failures = 0\n", false, {}, {}, 0, "t.toml:2: key 'escrow.code_max_failures'"},
        {"[escrow]\ncode_lockout = \"soon\"\n", false, {}, {}, 0, "t.toml:2: key 'escrow.code_lockout'"},
    };
    for (const auto& c : cases) {
        ConfigError err;
        auto cfg = parse(c.toml, "t.toml", err);
        ASSERT_EQ(cfg.has_value(), c.ok) << c.toml << err.message;
        if (c.ok) {
            EXPECT_EQ(cfg->escrow.code_lockout, c.lockout);
            EXPECT_EQ(cfg->escrow.code_lockout_max, c.max);
            EXPECT_EQ(cfg->escrow.code_max_failures, c.failures);
        } else {
            EXPECT_NE(err.message.find(c.error), std::string::npos) << err.message;
        }
    }
}

}  // namespace
