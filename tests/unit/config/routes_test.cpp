// [[delivery.routes]]: next-hop syntax, which route a domain takes (exact, the longest .suffix, *),
// and the config file's checks (unknown keys, bad patterns, a pattern routed twice, credentials
// only with a verified next hop, the password file's mode), each naming the key and line.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "config/config.hpp"
#include "temp_dir.hpp"

using namespace mailward::config;
using mailward::test::TempDir;

namespace {

TEST(Routes, NextHopSyntax) {
    struct Row {
        const char* text;
        bool ok;
        const char* host;
        unsigned short port;
        bool mx_lookup;
    } rows[] = {
        {"[smtp.example.net]:587", true, "smtp.example.net", 587, false},
        {"[Smtp.Example.NET]", true, "smtp.example.net", 25, false},
        {"[192.0.2.7]:2525", true, "192.0.2.7", 2525, false},
        {"[2001:db8::1]:25", true, "2001:db8::1", 25, false},
        {"relay.example.net:2525", true, "relay.example.net", 2525, true},
        {"relay.example.net", true, "relay.example.net", 25, true},
        {"", false, "", 0, false},
        {"[]:25", false, "", 0, false},
        {"[smtp.example.net:587", false, "", 0, false},
        {"[smtp.example.net]587", false, "", 0, false},
        {"[smtp.example.net]:", false, "", 0, false},
        {"relay.example.net:0", false, "", 0, false},
        {"relay.example.net:65536", false, "", 0, false},
        {"relay.example.net:025", false, "", 0, false},
        {"relay.example.net:x", false, "", 0, false},
        {"192.0.2.7:25", false, "", 0, false},  // an address only in brackets (no MX lookup of an address)
        {"bad host:25", false, "", 0, false},
    };
    for (const auto& r : rows) {
        RouteConfig out;
        EXPECT_EQ(parse_next_hop(r.text, out), r.ok) << r.text;
        if (!r.ok) continue;
        EXPECT_EQ(out.host, r.host) << r.text;
        EXPECT_EQ(out.port, r.port) << r.text;
        EXPECT_EQ(out.mx_lookup, r.mx_lookup) << r.text;
        EXPECT_EQ(out.next_hop, r.text);
    }
}

TEST(Routes, ExactThenLongestSuffixThenAny) {
    std::vector<RouteConfig> routes(4);
    routes[0].name = "exact";
    routes[0].domains = {"example.com", "other.org"};
    routes[1].name = "suffix";
    routes[1].domains = {".example.com"};
    routes[2].name = "deeper";
    routes[2].domains = {".eu.example.com"};
    routes[3].name = "any";
    routes[3].domains = {"*"};
    struct Row {
        const char* domain;
        const char* want;
    } rows[] = {
        {"example.com", "exact"},       {"other.org", "exact"},       {"a.example.com", "suffix"},
        {"x.eu.example.com", "deeper"}, {"eu.example.com", "suffix"}, {"notexample.com", "any"},
        {"example.net", "any"},
    };
    for (const auto& r : rows) {
        const auto* got = find_route(routes, r.domain);
        ASSERT_NE(got, nullptr) << r.domain;
        EXPECT_EQ(got->name, r.want) << r.domain;
    }
    routes.pop_back();  // without "*": a domain no pattern covers has no route
    EXPECT_EQ(find_route(routes, "example.net"), nullptr);
    EXPECT_EQ(find_route({}, "example.com"), nullptr);
}

mailward::Result<Config> load_text(TempDir& dir, const std::string& text, ConfigError& err) {
    dir.write("m.toml", text);
    return load(dir.path() / "m.toml", err);
}

TEST(Routes, ConfigFileRoutesAndTheirErrors) {
    TempDir dir;
    const std::string pw = (dir.path() / "relay.pass").string();
    dir.write("relay.pass", "secret\n");
    ::chmod(pw.c_str(), 0600);
    {
        ConfigError err;
        auto cfg = load_text(
            dir,
            "[[delivery.routes]]\nname = \"smarthost\"\ndomains = [\"Example.com\", \".example.net\"]\n"
            "next_hop = \"[smtp.example.org]:587\"\nauth_user = \"relay\"\nauth_password_file = \"" +
                pw +
                "\"\n\n[[delivery.routes]]\ndomains = [\"*\"]\nnext_hop = \"mx.example.org\"\ntls = \"encrypt\"\n"
                "bind_address = \"192.0.2.7\"\nbind_address6 = \"2001:db8::7\"\n",
            err);
        ASSERT_TRUE(cfg) << err.message;
        ASSERT_EQ(cfg->delivery.routes.size(), 2u);
        const auto& a = cfg->delivery.routes[0];
        EXPECT_EQ(a.name, "smarthost");
        EXPECT_EQ(a.domains, (std::vector<std::string>{"example.com", ".example.net"}));
        EXPECT_EQ(a.host, "smtp.example.org");
        EXPECT_EQ(a.port, 587);
        EXPECT_FALSE(a.mx_lookup);
        EXPECT_EQ(a.tls, "verify") << "credentials only to an authenticated next hop";
        EXPECT_EQ(a.auth_user, "relay");
        const auto& b = cfg->delivery.routes[1];
        EXPECT_EQ(b.name, "mx.example.org") << "the next hop names a route without a name";
        EXPECT_EQ(b.tls, "encrypt");
        EXPECT_TRUE(b.mx_lookup);
        EXPECT_EQ(b.bind_address, "192.0.2.7");
        EXPECT_EQ(b.bind_address6, "2001:db8::7");
        EXPECT_TRUE(a.bind_address.empty()) << "[delivery] bind_address applies";
    }
    struct Row {
        const char* name;
        std::string text;
        const char* want;
    } rows[] = {
        {"not tables", "[delivery]\nroutes = 5\n", "m.toml:2: key 'delivery.routes': wrong type"},
        {"bad bind address",
         "[[delivery.routes]]\ndomains = [\"a.example\"]\nnext_hop = \"b.example\"\nbind_address6 = \"10.0.0.1\"\n",
         "m.toml:4: key 'delivery.routes[1].bind_address6': bad address \"10.0.0.1\""},
        {"unknown key", "[[delivery.routes]]\ndomains = [\"a.example\"]\nnext_hop = \"b.example\"\nport = 25\n",
         "m.toml:4: key 'delivery.routes[1].port': unknown key"},
        {"no next hop", "[[delivery.routes]]\ndomains = [\"a.example\"]\n", "a route needs domains and next_hop"},
        {"bad pattern", "[[delivery.routes]]\ndomains = [\"a..example\"]\nnext_hop = \"b.example\"\n",
         "bad domain pattern \"a..example\""},
        {"twice",
         "[[delivery.routes]]\ndomains = [\"a.example\"]\nnext_hop = \"b.example\"\n[[delivery.routes]]\n"
         "domains = [\"A.example\"]\nnext_hop = \"c.example\"\n",
         "\"a.example\" is already routed by delivery.routes[1]"},
        {"bad next hop", "[[delivery.routes]]\ndomains = [\"a.example\"]\nnext_hop = \"[b.example\"\n",
         "m.toml:3: key 'delivery.routes[1].next_hop': bad next hop \"[b.example\""},
        {"bad tls", "[[delivery.routes]]\ndomains = [\"a.example\"]\nnext_hop = \"b.example\"\ntls = \"none\"\n",
         "key 'delivery.routes[1].tls': unknown value \"none\""},
        {"user without file",
         "[[delivery.routes]]\ndomains = [\"a.example\"]\nnext_hop = \"b.example\"\nauth_user = \"u\"\n",
         "auth_user and auth_password_file go together"},
        {"auth below verify",
         "[[delivery.routes]]\ndomains = [\"a.example\"]\nnext_hop = \"b.example\"\ntls = \"encrypt\"\nauth_user = "
         "\"u\"\n"
         "auth_password_file = \"" +
             pw + "\"\n",
         "with auth_user, tls must be \"verify\" or \"dane\""},
    };
    for (const auto& r : rows) {
        ConfigError err;
        EXPECT_FALSE(load_text(dir, r.text, err)) << r.name;
        EXPECT_NE(err.message.find(r.want), std::string::npos) << r.name << ": " << err.message;
    }
    // A password file others may read.
    ::chmod(pw.c_str(), 0644);
    ConfigError err;
    EXPECT_FALSE(load_text(dir,
                           "[[delivery.routes]]\ndomains = [\"a.example\"]\nnext_hop = \"[b.example]\"\nauth_user = "
                           "\"u\"\nauth_password_file = \"" +
                               pw + "\"\n",
                           err));
    EXPECT_NE(err.message.find("may be read by group or others"), std::string::npos) << err.message;
}

}  // namespace
