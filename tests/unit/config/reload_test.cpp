// Tests of config::merge_reload and config::reload (SIGHUP): which changed keys apply in place,
// which keep their running value and are named for a restart, and a bad or missing file refused.
#include <gtest/gtest.h>

#include "temp_dir.hpp"

#include <fstream>

#include "config/reload.hpp"

using namespace mailward::config;
namespace fs = std::filesystem;

namespace {

Config parsed(const std::string& text) {
    ConfigError err;
    auto cfg = parse(text, "test.toml", err);
    EXPECT_TRUE(cfg) << err.message;
    return cfg ? *cfg : Config{};
}

}  // namespace

TEST(ConfigReload, KeysInPlaceAndKeysForRestart) {
    struct Case {
        const char* what;
        std::string running;
        std::string next;
        std::vector<std::string> restart;
        std::vector<std::string> changed;
    };
    const Case cases[] = {
        {"nothing changed", "[server]\nhostname = \"a.example\"\n", "[server]\nhostname = \"a.example\"\n", {}, {}},
        {"static policy", "", "[policy.domains]\n\"x.example\" = \"verify\"\n", {}, {"policy.domains"}},
        {"limits and log level",
         "",
         "[server]\nlog_level = \"debug\"\n[submission]\nmax_recipients = 5\n",
         {},
         {"server.log_level", "submission.max_recipients"}},
        {"retry schedule", "", "[delivery]\nretry_schedule = [\"1s\", \"2s\"]\n", {}, {"delivery.retry_schedule"}},
        {"listen address",
         "[submission]\nlisten = [\"127.0.0.1:2525\"]\n",
         "[submission]\nlisten = [\"127.0.0.1:2526\"]\n",
         {"submission.listen"},
         {}},
        {"data_dir and user",
         "",
         "[server]\ndata_dir = \"/tmp/elsewhere\"\nuser = \"nobody\"\n",
         {"server.data_dir", "server.user"},
         {}},
        {"store backend", "", "[store]\ncommit_interval = \"5ms\"\n", {"store.commit_interval"}, {}},
        {"both kinds",
         "",
         "[escrow]\nlisten = \"127.0.0.1:9443\"\n[delivery]\nmax_concurrency = 3\n",
         {"escrow.listen"},
         {"delivery.max_concurrency"}},
        {"shutdown timeout", "", "[server]\nshutdown_timeout = \"5s\"\n", {}, {"server.shutdown_timeout"}},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        const Config running = parsed(c.running);
        const Config next = parsed(c.next);
        auto r = merge_reload(running, next);
        EXPECT_EQ(r.restart, c.restart);
        EXPECT_EQ(r.changed, c.changed);
        // Restart-only keys keep the running value; the others take the new one.
        EXPECT_EQ(r.config.submission.listen.front().to_string(), running.submission.listen.front().to_string());
        EXPECT_EQ(r.config.server.data_dir, running.server.data_dir);
        EXPECT_EQ(r.config.server.user, running.server.user);
        EXPECT_EQ(r.config.escrow.listen, running.escrow.listen);
        EXPECT_EQ(r.config.store.commit_interval, running.store.commit_interval);
        EXPECT_EQ(r.config.policy.domains, next.policy.domains);
        EXPECT_EQ(r.config.server.log_level, next.server.log_level);
        EXPECT_EQ(r.config.delivery.retry_schedule, next.delivery.retry_schedule);
        EXPECT_EQ(r.config.delivery.max_concurrency, next.delivery.max_concurrency);
        EXPECT_EQ(r.config.server.shutdown_timeout, next.server.shutdown_timeout);
    }
}

TEST(ConfigReload, ReadsTheFileAgainAndRefusesABadOne) {
    mailward::test::TempDir dir;
    const fs::path file = dir.path() / "mailward.toml";
    std::ofstream(file) << "[server]\nhostname = \"a.example\"\n";
    ConfigError err;
    auto running = load(file, err);
    ASSERT_TRUE(running) << err.message;

    std::ofstream(file) << "[server]\nhostname = \"a.example\"\n[policy.domains]\n\"x.example\" = \"dane\"\n";
    auto good = reload(*running, err);
    ASSERT_TRUE(good) << err.message;
    EXPECT_EQ(good->config.policy.domains.at("x.example"), "dane");
    EXPECT_EQ(good->config.source, running->source);

    std::ofstream(file) << "[server]\nhostname = \"a.example\"\n\n[delivery]\nmax_concurrency = \"many\"\n";
    ConfigError bad_err;
    auto bad = reload(*running, bad_err);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad_err.message.find("mailward.toml:5"), std::string::npos) << bad_err.message;
    EXPECT_EQ(bad_err.message.find('\n'), std::string::npos) << "one line: " << bad_err.message;

    ConfigError none_err;
    EXPECT_FALSE(reload(parsed(""), none_err));
    EXPECT_NE(none_err.message.find("without -c"), std::string::npos) << none_err.message;
}

TEST(ConfigReload, KeyFilesNeedNotBeReadable) {
    // After the privilege drop a key may be root's: the reload goes on, the listener keeps its
    // certificate (and says so); a start still refuses the file.
    mailward::test::TempDir dir;
    const fs::path file = dir.path() / "mailward.toml";
    std::ofstream(file) << "[submission]\ncert = \"missing.crt\"\nkey = \"missing.key\"\n";
    ConfigError err;
    EXPECT_FALSE(load(file, err));
    EXPECT_NE(err.message.find("submission.cert"), std::string::npos) << err.message;
    ConfigError reload_err;
    auto cfg = load_without_file_checks(file, reload_err);
    ASSERT_TRUE(cfg) << reload_err.message;
    EXPECT_EQ(cfg->submission.key, dir.path() / "missing.key");
}
