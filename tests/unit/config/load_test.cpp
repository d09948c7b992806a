// Tests of config::load against real files in a temp dir per test: missing and unreadable files,
// relative path resolution, files the user must supply, key pairs, the master key directory, and
// that docs/mailward.example.toml loads.
#include <gtest/gtest.h>

#include "temp_dir.hpp"
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "config/config.hpp"

using namespace mailward::config;
namespace fs = std::filesystem;

namespace {

using mailward::test::TempDir;

// Restores the working directory when a test changed it.
class CwdGuard {
  public:
    CwdGuard() : saved_(fs::current_path()) {}
    ~CwdGuard() { fs::current_path(saved_); }

  private:
    fs::path saved_;
};

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST(ConfigLoad, MissingFile) {
    TempDir dir;
    const fs::path file = dir.path() / "nope.toml";
    ConfigError err;
    auto cfg = load(file, err);
    EXPECT_FALSE(cfg.has_value());
    EXPECT_EQ(err.message, file.string() + ": cannot read: No such file or directory");
    EXPECT_EQ(err.problems, std::vector<std::string>{err.message});
}

TEST(ConfigLoad, DirectoryIsNotAFile) {
    TempDir dir;
    ConfigError err;
    EXPECT_FALSE(load(dir.path(), err).has_value());
    EXPECT_EQ(err.message, dir.path().string() + ": cannot read: Is a directory");
}

TEST(ConfigLoad, ErrorsNameTheFileAsGiven) {
    TempDir dir;
    CwdGuard cwd;
    dir.write("m.toml", "[server]\nhostname = \"ok.example\"\n\nlog_level = \"chatty\"\n");
    fs::current_path(dir.path());
    ConfigError err;
    EXPECT_FALSE(load("m.toml", err).has_value());
    EXPECT_EQ(err.message.rfind("m.toml:4: key 'server.log_level': unknown value \"chatty\"", 0), 0u) << err.message;

    dir.write("bad.toml", "[server]\nhostname = \"x\n");
    EXPECT_FALSE(load(dir.path() / "bad.toml", err).has_value());
    EXPECT_TRUE(has(err.message, (dir.path() / "bad.toml").string() + ":2: TOML syntax error")) << err.message;
}

TEST(ConfigLoad, RelativePathsAreRelativeToTheConfigFile) {
    TempDir dir;
    CwdGuard cwd;
    const fs::path d = dir.path();
    dir.write("conf/tls/c.pem", "cert");
    dir.write("conf/tls/k.pem", "key");
    dir.write("ca.pem", "ca");
    dir.write("conf/anchors/root.key", "anchor");
    dir.write("etc/e.pem", "cert");
    dir.write("etc/e.key", "key");
    fs::create_directories(d / "conf/keys");
    dir.write("conf/m.toml", R"([server]
data_dir = "spool"
[submission]
cert = "tls/c.pem"
key = "./tls/k.pem"
[dns]
trust_anchor_file = "anchors/root.key"
[delivery]
ca_file = "../ca.pem"
[escrow]
cert = "../etc/e.pem"
key = ")" + (d / "etc/e.key").string() +
                                 R"("
master_key_file = "keys/master.key"
)");
    fs::current_path(d / "conf/keys");  // the working directory must not matter
    ConfigError err;
    auto cfg = load("../m.toml", err);
    ASSERT_TRUE(cfg.has_value()) << err.message;
    EXPECT_EQ(cfg->source, d / "conf/m.toml");
    EXPECT_EQ(cfg->server.data_dir, d / "conf/spool");
    EXPECT_EQ(cfg->submission.cert, d / "conf/tls/c.pem");
    EXPECT_EQ(cfg->submission.key, d / "conf/tls/k.pem");
    EXPECT_EQ(cfg->dns.trust_anchor_file, d / "conf/anchors/root.key");
    EXPECT_EQ(cfg->delivery.ca_file, d / "ca.pem");
    EXPECT_EQ(cfg->escrow.cert, d / "etc/e.pem");
    EXPECT_EQ(cfg->escrow.key, d / "etc/e.key");                         // absolute stays as written
    EXPECT_EQ(cfg->escrow.master_key_file, d / "conf/keys/master.key");  // need not exist yet
    EXPECT_EQ(in_data_dir(*cfg, "queue.db"), d / "conf/spool/queue.db");
}

TEST(ConfigLoad, DefaultsStayRelativeToTheWorkingDirectory) {
    TempDir dir;
    const fs::path file = dir.write("m.toml", "[server]\nhostname = \"relay.example\"\n");
    ConfigError err;
    auto cfg = load(file, err);
    ASSERT_TRUE(cfg.has_value()) << err.message;
    EXPECT_EQ(cfg->server.data_dir, "var");  // not written in the file: the embedded default
    EXPECT_EQ(cfg->source, file);
}

TEST(ConfigLoad, SuppliedFilesMustBeReadable) {
    struct Case {
        const char* toml;
        const char* want;
    };
    // The temp dir holds c.pem and k.pem only; paths are relative to it.
    const Case cases[] = {
        {"[submission]\ncert = \"c.pem\"\nkey = \"missing.pem\"\n",
         ":3: key 'submission.key': cannot read \"DIR/missing.pem\": No such file or directory"},
        {"[submission]\ncert = \"c.pem\"\n",
         ":2: key 'submission.cert': given without submission.key (expected both or neither)"},
        {"[submission]\n\nkey = \"k.pem\"\n",
         ":3: key 'submission.key': given without submission.cert (expected both or neither)"},
        {"[escrow]\nkey = \"k.pem\"\n", ":2: key 'escrow.key': given without escrow.cert"},
        {"[escrow]\ncert = \"c.pem\"\nkey = \"sub\"\n",
         ":3: key 'escrow.key': cannot read \"DIR/sub\": it is a directory"},
        {"[dns]\ntrust_anchor_file = \"root.key\"\n",
         ":2: key 'dns.trust_anchor_file': cannot read \"DIR/root.key\": No such file or directory "
         "(expected a "
         "readable file)"},
        {"[delivery]\nca_file = \"ca.pem\"\n", ":2: key 'delivery.ca_file': cannot read \"DIR/ca.pem\""},
        {"[escrow]\nmaster_key_file = \"nodir/master.key\"\n",
         ":2: key 'escrow.master_key_file': directory \"DIR/nodir\" does not exist"},
    };
    TempDir dir;
    dir.write("c.pem", "cert");
    dir.write("k.pem", "key");
    fs::create_directories(dir.path() / "sub");
    for (const auto& c : cases) {
        const fs::path file = dir.write("m.toml", c.toml);
        std::string want = c.want;
        if (auto at = want.find("DIR"); at != std::string::npos) want.replace(at, 3, dir.path().string());
        ConfigError err;
        EXPECT_FALSE(load(file, err).has_value()) << c.toml;
        EXPECT_TRUE(has(err.message, file.string() + want)) << err.message << "\nwant: " << want;
    }
}

TEST(ConfigLoad, SuppliedFilesThatExistLoad) {
    TempDir dir;
    dir.write("c.pem", "cert");
    dir.write("k.pem", "key");
    dir.write("anchor.key", "anchor");
    const fs::path file = dir.write("m.toml", R"([submission]
cert = "c.pem"
key = "k.pem"
[escrow]
cert = "c.pem"
key = "k.pem"
master_key_file = "master.key"
[dns]
trust_anchor_file = "anchor.key"
[delivery]
ca_file = "c.pem"
)");
    ConfigError err;
    auto cfg = load(file, err);
    ASSERT_TRUE(cfg.has_value()) << err.message;
    EXPECT_EQ(cfg->escrow.master_key_file, dir.path() / "master.key");
    EXPECT_FALSE(fs::exists(cfg->escrow.master_key_file));  // loading creates nothing
}

TEST(ConfigLoad, ConfigDocExampleLoads) {
    std::ifstream in(MAILWARD_CONFIG_DOC);
    std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto begin = doc.find("```toml\n");
    ASSERT_NE(begin, std::string::npos);
    const auto end = doc.find("```", begin + 8);
    ASSERT_NE(end, std::string::npos);
    TempDir dir;
    dir.write("tls/relay.crt", "cert");  // the example names these relative to the file
    dir.write("tls/relay.key", "key");
    const fs::path file = dir.write("mailward.toml", doc.substr(begin + 8, end - begin - 8));
    ConfigError err;
    auto cfg = load(file, err);
    ASSERT_TRUE(cfg.has_value()) << err.message;
    EXPECT_EQ(cfg->submission.cert, dir.path() / "tls/relay.crt");
    EXPECT_EQ(cfg->store.backend, "sqlite");
    EXPECT_EQ(cfg->submission.trusted_networks.size(), 3u);
}

// Every key docs/config.md lists in a "## [section]" table is a key the loader knows.
TEST(ConfigLoad, ConfigDocListsOnlyKnownKeys) {
    std::ifstream in(MAILWARD_CONFIG_DOC);
    std::string line;
    std::string section;
    int keys = 0;
    while (std::getline(in, line)) {
        if (line.rfind("## [", 0) == 0) {
            section = line.substr(4, line.find(']') - 4);
        } else if (line.rfind("## ", 0) == 0) {
            section.clear();
        } else if (!section.empty() && line.rfind("| `", 0) == 0) {
            const std::string key = line.substr(3, line.find('`', 3) - 3);
            ConfigError err;
            // A value of no key's type: the error must be about the value, not the key's name.
            EXPECT_FALSE(parse("[" + section + "]\n" + key + " = 1979-05-27\n", "d.toml", err).has_value());
            EXPECT_TRUE(has(err.message, "d.toml:2: key '" + section + "." + key + "': wrong type: got date"))
                << err.message;
            ++keys;
        }
    }
    EXPECT_EQ(keys, 5 + 22 + 3 + 17 + 8 + 10 + 10 + 5 + 1 + 2 + 5 + 5);  // every field of config.hpp
}

TEST(ConfigLoad, ExampleFileLoads) {
    ConfigError err;
    auto cfg = load(MAILWARD_EXAMPLE_CONFIG, err);
    ASSERT_TRUE(cfg.has_value()) << err.message;
    EXPECT_EQ(cfg->server.hostname, "relay.example.com");
    EXPECT_EQ(cfg->server.data_dir, "/var/lib/mailward");
    EXPECT_EQ(cfg->policy.default_mode, SenderMode::tls_or_escrow);
    EXPECT_EQ(cfg->store.backend, "sqlite");
    EXPECT_FALSE(cfg->submission.tls_listen.empty());
}
