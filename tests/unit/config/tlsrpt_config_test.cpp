// [tlsrpt] (RFC 8460 reports): the keys, their defaults (off; organization, contact and from from
// [server] hostname), errors that name file, line and key, and reload needing a restart.
#include <gtest/gtest.h>

#include <string>

#include "config/config.hpp"
#include "config/reload.hpp"

namespace mailward::config {
namespace {

TEST(ConfigTlsRpt, DefaultsAndValues) {
    ConfigError err;
    auto d = parse("[server]\nhostname = \"mx.example.org\"\n", "t.toml", err);
    ASSERT_TRUE(d.has_value()) << err.message;
    EXPECT_FALSE(d->tlsrpt.enabled) << "off by default: reports disclose traffic data";
    EXPECT_EQ(d->tlsrpt.send_hour, 1u);
    EXPECT_EQ(tlsrpt_organization(*d), "mx.example.org");
    EXPECT_EQ(tlsrpt_contact(*d), "postmaster@mx.example.org");
    EXPECT_EQ(tlsrpt_from(*d), "postmaster@mx.example.org");
    auto c = parse(
        "[tlsrpt]\nenabled = true\norganization = \"Example Org\"\ncontact = \"https://example.org/tls\"\n"
        "from = \"tlsrpt@example.org\"\nsend_hour = 23\n",
        "t.toml", err);
    ASSERT_TRUE(c.has_value()) << err.message;
    EXPECT_TRUE(c->tlsrpt.enabled);
    EXPECT_EQ(tlsrpt_organization(*c), "Example Org");
    EXPECT_EQ(tlsrpt_contact(*c), "https://example.org/tls");
    EXPECT_EQ(tlsrpt_from(*c), "tlsrpt@example.org");
    EXPECT_EQ(c->tlsrpt.send_hour, 23u);
}

TEST(ConfigTlsRpt, ErrorsNameFileLineAndKey) {
    struct Case {
        std::string text;
        std::string want;
    } cases[] = {
        {"[tlsrpt]\nsend_hour = 24\n", "t.toml:2: key 'tlsrpt.send_hour': hour 24 is out of range"},
        {"[tlsrpt]\nsend_hour = -1\n", "t.toml:2: key 'tlsrpt.send_hour': hour -1 is out of range"},
        {"[tlsrpt]\nsend_hour = \"1\"\n", "t.toml:2: key 'tlsrpt.send_hour': wrong type"},
        {"[tlsrpt]\n\nfrom = \"no-at-sign\"\n",
         "t.toml:3: key 'tlsrpt.from': \"no-at-sign\" is not a plain mail address"},
        {"[tlsrpt]\nfrom = \"a b@example.org\"\n", "t.toml:2: key 'tlsrpt.from'"},
        {"[tlsrpt]\nfrom = \"<a@example.org>\"\n", "t.toml:2: key 'tlsrpt.from'"},
        {"[tlsrpt]\norganization = \"\"\n", "t.toml:2: key 'tlsrpt.organization': empty string"},
        {"[tlsrpt]\nenabled = \"yes\"\n", "t.toml:2: key 'tlsrpt.enabled': wrong type"},
        {"[tlsrpt]\nenable = true\n", "t.toml:2: key 'tlsrpt.enable': unknown key (did you mean 'enabled'?)"},
    };
    for (const auto& c : cases) {
        ConfigError err;
        EXPECT_FALSE(parse(c.text, "t.toml", err).has_value()) << c.text;
        EXPECT_NE(err.message.find(c.want), std::string::npos) << "got: " << err.message << "\nwant: " << c.want;
    }
}

TEST(ConfigTlsRpt, ChangingItNeedsARestart) {
    Config running = defaults();
    Config next = running;
    next.tlsrpt.enabled = true;
    next.tlsrpt.send_hour = 5;
    auto r = merge_reload(running, next);
    EXPECT_EQ(r.restart, (std::vector<std::string>{"tlsrpt.enabled", "tlsrpt.send_hour"}));
    EXPECT_FALSE(r.config.tlsrpt.enabled);
}

}  // namespace
}  // namespace mailward::config
