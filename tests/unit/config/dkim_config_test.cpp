// [[dkim]] (config/dkim.cpp): the entries, their defaults, errors that name file, line and key, the
// key file's mode, reload needing a restart, and docs/config.md listing exactly these keys.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "config/config.hpp"
#include "config/reload.hpp"
#include "temp_dir.hpp"

namespace mailward::config {
namespace {

TEST(ConfigDkim, ParsesEntriesWithDefaults) {
    test::TempDir dir;
    auto a = dir.write("a.key", "k");
    auto b = dir.write("b.key", "k");
    ::chmod(a.c_str(), 0600);
    ::chmod(b.c_str(), 0400);
    const std::string text = "[[dkim]]\ndomain = \"Example.ORG\"\nselector = \"mw2026\"\nkey_file = \"" + a.string() +
                             "\"\n\n[[dkim]]\ndomain = \"ed.example.org\"\nselector = \"ed_1\"\nkey_file = \"" +
                             b.string() + "\"\nalgorithm = \"rsa-sha256\"\nsign_relayed = false\n";
    ConfigError err;
    auto cfg = parse(text, "d.toml", err);
    ASSERT_TRUE(cfg.has_value()) << err.message;
    ASSERT_EQ(cfg->dkim.size(), 2u);
    EXPECT_EQ(cfg->dkim[0].domain, "example.org");
    EXPECT_EQ(cfg->dkim[0].selector, "mw2026");
    EXPECT_EQ(cfg->dkim[0].key_file, a);
    EXPECT_EQ(cfg->dkim[0].algorithm, "rsa-sha256");
    EXPECT_TRUE(cfg->dkim[0].sign_relayed);
    EXPECT_EQ(cfg->dkim[1].algorithm, "rsa-sha256");
    EXPECT_FALSE(cfg->dkim[1].sign_relayed);
    EXPECT_TRUE(parse("[server]\n", "d.toml", err)->dkim.empty());
}

TEST(ConfigDkim, ErrorsNameFileLineAndKey) {
    test::TempDir dir;
    auto ok = dir.write("ok.key", "k");
    ::chmod(ok.c_str(), 0600);
    auto open = dir.write("open.key", "k");
    ::chmod(open.c_str(), 0644);
    auto group = dir.write("group.key", "k");
    ::chmod(group.c_str(), 0640);
    const std::string k = "key_file = \"" + ok.string() + "\"\n";
    struct Case {
        std::string text;
        std::string want;
    } cases[] = {
        {"[[dkim]]\ndomain = \"a.test\"\nselector = \"s\"\nkey_file = \"" + open.string() + "\"\n",
         "d.toml:4: key 'dkim.key_file': \"" + open.string() + "\" may be read by group or others (mode 0644"},
        {"[[dkim]]\ndomain = \"a.test\"\nselector = \"s\"\nkey_file = \"" + group.string() + "\"\n",
         "d.toml:4: key 'dkim.key_file': \"" + group.string() + "\" may be read by group or others (mode 0640"},
        {"[[dkim]]\ndomain = \"a.test\"\nselector = \"s\"\nkey_file = \"" + (dir.path() / "none").string() + "\"\n",
         "d.toml:4: key 'dkim.key_file': cannot read"},
        {"[[dkim]]\ndomain = \"a.test\"\nselector = \"s\"\n" + k + "algorithm = \"rsa-sha1\"\n",
         "d.toml:5: key 'dkim.algorithm'"},
        {"[[dkim]]\ndomain = \"a.test\"\nselector = \"s\"\n" + k + "algorithm = \"ed25519-sha256\"\n",
         "d.toml:5: key 'dkim.algorithm': \"ed25519-sha256\" is not offered: Debian 12's libopendkim 2.11 leaks"},
        {"[[dkim]]\ndomain = \"a.test\"\n" + k, "d.toml:1: key 'dkim.selector': missing in this [[dkim]] entry"},
        {"[[dkim]]\nselector = \"s\"\n" + k, "d.toml:1: key 'dkim.domain': missing"},
        {"[[dkim]]\ndomain = \"a.test\"\nselector = \"s\"\n", "d.toml:1: key 'dkim.key_file': missing"},
        {"[[dkim]]\ndomain = \"a.test\"\nselector = \"bad sel\"\n" + k,
         "d.toml:3: key 'dkim.selector': \"bad sel\" is not a selector"},
        {"[[dkim]]\ndomain = \"not a host\"\nselector = \"s\"\n" + k, "d.toml:2: key 'dkim.domain'"},
        {"[[dkim]]\ndomain = \"a.test\"\nselector = \"s\"\n" + k + "selectr = \"x\"\n",
         "d.toml:5: key 'dkim.selectr': unknown key (did you mean 'dkim.selector'?)"},
        {"[[dkim]]\ndomain = \"a.test\"\nselector = \"s\"\n" + k + "sign_relayed = \"yes\"\n",
         "d.toml:5: key 'dkim.sign_relayed': wrong type"},
        {"[[dkim]]\ndomain = \"a.test\"\nselector = \"s\"\n" + k +
             "\n[[dkim]]\ndomain = \"A.test\"\nselector = \"t\"\n" + k,
         "d.toml:7: key 'dkim.domain': domain \"a.test\" has a [[dkim]] entry already"},
        {"[dkim]\ndomain = \"a.test\"\n", "key 'dkim': wrong type: got table (expected [[dkim]] tables"},
        {"dkim = 1\n", "d.toml:1: key 'dkim': wrong type"},
    };
    for (const auto& c : cases) {
        ConfigError err;
        EXPECT_FALSE(parse(c.text, "d.toml", err).has_value()) << c.text;
        EXPECT_NE(err.message.find(c.want), std::string::npos) << "got: " << err.message << "\nwant: " << c.want;
    }
    // Without file checks (a reload after the privilege drop) the mode is not looked at.
    ConfigError err;
    EXPECT_TRUE(parse(cases[0].text, "d.toml", err, FileChecks::skip).has_value()) << err.message;
}

TEST(ConfigDkim, ChangingItNeedsARestart) {
    Config running = defaults();
    running.dkim.push_back({"a.test", "s1", "/k1", "rsa-sha256", true});
    Config next = running;
    next.dkim[0].selector = "s2";
    auto r = merge_reload(running, next);
    ASSERT_EQ(r.restart.size(), 1u);
    EXPECT_EQ(r.restart[0], "dkim");
    EXPECT_EQ(r.config.dkim[0].selector, "s1");
    EXPECT_TRUE(merge_reload(running, running).restart.empty());
}

// docs/config.md's [[dkim]] table lists exactly the keys the loader knows.
TEST(ConfigDkim, DocListsTheKeys) {
    std::ifstream in(MAILWARD_CONFIG_DOC);
    std::string line, keys;
    bool in_section = false;
    while (std::getline(in, line)) {
        if (line.rfind("## ", 0) == 0) in_section = line.find("[[dkim]]") != std::string::npos;
        if (in_section && line.rfind("| `", 0) == 0) keys += line.substr(3, line.find('`', 3) - 3) + " ";
    }
    EXPECT_EQ(keys, "domain selector key_file algorithm sign_relayed ");
}

}  // namespace
}  // namespace mailward::config
