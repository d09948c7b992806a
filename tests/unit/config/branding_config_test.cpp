// [branding] (config/branding.cpp): defaults, every key read, bad values named with file, line and
// key, the logo file checked by magic bytes and size (SVG refused), reload needing a restart.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "config/config.hpp"
#include "config/reload.hpp"
#include "temp_dir.hpp"

namespace mailward::config {
namespace {

const std::string kPng = std::string("\x89PNG\r\n\x1a\n", 8) + std::string("\0\0\0\rIHDR", 8) + "rest";
const std::string kJpeg = std::string("\xff\xd8\xff\xe0", 4) + "JFIF";

bool has(const std::string& s, std::string_view what) { return s.find(what) != std::string::npos; }

TEST(ConfigBranding, Defaults) {
    const Config c = defaults();
    EXPECT_EQ(c.branding.organization, "");
    EXPECT_EQ(organization_name(c), c.server.hostname);
    EXPECT_TRUE(c.branding.logo_file.empty());
    EXPECT_EQ(c.branding.color, "#0b3d91");
    EXPECT_EQ(c.branding.support_contact, "");
    EXPECT_EQ(c.branding.language, "en");
}

TEST(ConfigBranding, EveryKeyIsRead) {
    test::TempDir dir;
    const auto logo = dir.write("logo.png", kPng);
    ConfigError err;
    auto cfg = parse("[branding]\norganization = \"Acme <Ltd> & Söhne\"\nlogo_file = \"" + logo.string() +
                         "\"\ncolor = \"#AA33ff\"\nsupport_contact = \"help@acme.example\"\nlanguage = \"de\"\n",
                     "b.toml", err);
    ASSERT_TRUE(cfg.has_value()) << err.message;
    EXPECT_EQ(cfg->branding.organization, "Acme <Ltd> & Söhne");
    EXPECT_EQ(organization_name(*cfg), "Acme <Ltd> & Söhne");
    EXPECT_EQ(cfg->branding.logo_file, logo);
    EXPECT_EQ(cfg->branding.color, "#aa33ff");
    EXPECT_EQ(cfg->branding.support_contact, "help@acme.example");
    EXPECT_EQ(cfg->branding.language, "de");
    cfg = parse("[branding]\nsupport_contact = \"https://acme.example:8443/help?x=1\"\n", "b.toml", err);
    ASSERT_TRUE(cfg.has_value()) << err.message;
    EXPECT_EQ(cfg->branding.support_contact, "https://acme.example:8443/help?x=1");
}

TEST(ConfigBranding, BadValuesNameFileLineAndKey) {
    struct Row {
        std::string toml, want;
    } rows[] = {
        {"[branding]\ncolor = \"red\"\n", "b.toml:2: key 'branding.color': bad colour \"red\""},
        {"[branding]\n\ncolor = \"#12345\"\n", "b.toml:3: key 'branding.color': bad colour"},
        {"[branding]\ncolor = \"#12345g\"\n", "b.toml:2: key 'branding.color'"},
        {"[branding]\ncolor = \"#123456;x\"\n", "b.toml:2: key 'branding.color'"},
        {"[branding]\ncolor = 123\n", "b.toml:2: key 'branding.color': wrong type"},
        {"[branding]\nsupport_contact = \"http://acme.example/help\"\n",
         "b.toml:2: key 'branding.support_contact': bad contact"},
        {"[branding]\nsupport_contact = \"javascript:alert(1)\"\n", "b.toml:2: key 'branding.support_contact'"},
        {"[branding]\nsupport_contact = \"https://acme.example/\\\"onmouseover=x\"\n",
         "b.toml:2: key 'branding.support_contact'"},
        {"[branding]\nsupport_contact = \"help at acme.example\"\n", "b.toml:2: key 'branding.support_contact'"},
        {"[branding]\nsupport_contact = \"a@b@\"\n", "b.toml:2: key 'branding.support_contact'"},
        {"[branding]\nsupport_contact = \"<x>@acme.example\"\n", "b.toml:2: key 'branding.support_contact'"},
        {"[branding]\nsupport_contact = \"\"\n", "b.toml:2: key 'branding.support_contact': empty string"},
        {"[branding]\norganization = \"\"\n", "b.toml:2: key 'branding.organization': empty string"},
        {"[branding]\norganization = \"Acme\\r\\nBcc: x@y\"\n", "b.toml:2: key 'branding.organization': not a name"},
        {"[branding]\norganization = \"" + std::string(129, 'a') + "\"\n",
         "b.toml:2: key 'branding.organization': not a name"},
        {"[branding]\nlanguage = \"fr\"\n", "b.toml:2: key 'branding.language': unknown value"},
        {"[branding]\nlogo_file = \"\"\n", "b.toml:2: key 'branding.logo_file'"},
        {"[branding]\nlogo_file = \"/nonexistent/logo.png\"\n",
         "b.toml:2: key 'branding.logo_file': cannot use \"/nonexistent/logo.png\": No such file or directory"},
        {"[branding]\ncolour = \"#000000\"\n", "b.toml:2: key 'branding.colour': unknown key (did you mean 'color'?)"},
    };
    for (const auto& r : rows) {
        ConfigError err;
        EXPECT_FALSE(parse(r.toml, "b.toml", err).has_value()) << r.toml;
        EXPECT_TRUE(has(err.message, r.want)) << r.toml << "\n got: " << err.message;
    }
}

TEST(ConfigBranding, LogoFileByMagicBytesAndSize) {
    test::TempDir dir;
    struct Row {
        std::string name, bytes, error;  // error "" = accepted
    } rows[] = {
        {"a.png", kPng, ""},
        {"a.jpg", kJpeg, ""},
        {"a.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>",
         "it is SVG, which can carry script"},
        {"b.png", "<?xml version=\"1.0\"?><svg/>", "it is SVG, which can carry script"},
        {"a.gif", "GIF89a....", "it is neither PNG nor JPEG"},
        {"empty.png", "", "it is neither PNG nor JPEG"},
        {"big.png", kPng + std::string(kMaxLogoSize, 'x'), "it is larger than 262144 octets"},
    };
    for (const auto& r : rows) {
        const auto file = dir.write(r.name, r.bytes);
        ConfigError err;
        auto cfg = parse("[branding]\nlogo_file = \"" + file.string() + "\"\n", "b.toml", err);
        if (r.error.empty()) {
            EXPECT_TRUE(cfg.has_value()) << r.name << ": " << err.message;
            std::string bytes;
            EXPECT_EQ(read_logo(file, bytes), "") << r.name;
            EXPECT_EQ(bytes, r.bytes) << r.name;
        } else {
            EXPECT_FALSE(cfg.has_value()) << r.name;
            EXPECT_TRUE(has(err.message, "b.toml:2: key 'branding.logo_file': cannot use")) << err.message;
            EXPECT_TRUE(has(err.message, r.error)) << r.name << ": " << err.message;
            // Without file checks (a reload after the drop) the path alone is read.
            EXPECT_TRUE(parse("[branding]\nlogo_file = \"" + file.string() + "\"\n", "b.toml", err, FileChecks::skip))
                << err.message;
        }
    }
    EXPECT_EQ(logo_content_type(kPng), "image/png");
    EXPECT_EQ(logo_content_type(kJpeg), "image/jpeg");
    EXPECT_EQ(logo_content_type("<svg"), "");
    std::string bytes;
    EXPECT_EQ(read_logo(dir.path(), bytes), "it is not a regular file");
}

TEST(ConfigBranding, ReloadNeedsARestart) {
    Config running = defaults();
    Config next = defaults();
    next.branding.organization = "Other";
    next.branding.color = "#000000";
    auto r = merge_reload(running, next);
    EXPECT_EQ(r.config.branding.organization, "");
    EXPECT_EQ(r.config.branding.color, "#0b3d91");
    EXPECT_NE(std::find(r.restart.begin(), r.restart.end(), "branding.organization"), r.restart.end());
    EXPECT_NE(std::find(r.restart.begin(), r.restart.end(), "branding.color"), r.restart.end());
}

}  // namespace
}  // namespace mailward::config
