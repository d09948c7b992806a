// Table-driven tests of endpoint and network parsing and of Network::contains, including the
// IPv4 / IPv4-mapped IPv6 equivalence documented in config.hpp.
#include <gtest/gtest.h>

#include "config/config.hpp"

using namespace mailward::config;

namespace {

std::vector<unsigned char> ip(const char* text) {
    auto r = parse_ip(text);
    EXPECT_TRUE(r.has_value()) << text;
    return r.value_or(std::vector<unsigned char>{});
}

}  // namespace

TEST(Network, Contains) {
    struct Case {
        const char* net;
        const char* ip;
        bool want;
    };
    const Case cases[] = {
        {"127.0.0.0/8", "127.1.2.3", true},
        {"127.0.0.0/8", "128.0.0.1", false},
        {"127.0.0.0/8", "126.255.255.255", false},
        {"127.0.0.0/8", "::ffff:127.0.0.1", true},  // v4 peer on a dual-stack socket
        {"127.0.0.0/8", "::ffff:10.0.0.1", false},
        {"127.0.0.0/8", "::1", false},
        {"127.0.0.0/8", "::127.0.0.1", false},      // deprecated v4-compatible form is not mapped
        {"127.0.0.0/8", "64:ff9b::7f00:1", false},  // NAT64 is not mapped either
        {"0.0.0.0/0", "203.0.113.9", true},
        {"0.0.0.0/0", "::ffff:1.2.3.4", true},
        {"0.0.0.0/0", "2001:db8::1", false},
        {"192.0.2.7/32", "192.0.2.7", true},
        {"192.0.2.7/32", "192.0.2.8", false},
        {"192.0.2.7/32", "::ffff:192.0.2.7", true},
        {"192.0.2.7", "192.0.2.7", true},  // bare address = /32
        {"192.0.2.7", "192.0.2.6", false},
        {"10.0.0.0/9", "10.127.255.255", true},  // prefix not on a byte boundary
        {"10.0.0.0/9", "10.128.0.0", false},
        {"::1/128", "::1", true},
        {"::1/128", "::2", false},
        {"::1/128", "127.0.0.1", false},
        {"::1", "::1", true},  // bare address = /128
        {"::/0", "2001:db8::1", true},
        {"::/0", "1.2.3.4", true},  // a v4 address is ::ffff:a.b.c.d, which ::/0 contains
        {"2001:db8::/32", "2001:db8:ffff::1", true},
        {"2001:db8::/32", "2001:db9::1", false},
        {"2001:db8::/32", "10.0.0.1", false},
        {"fe80::/10", "febf::1", true},
        {"fe80::/10", "fec0::1", false},
        {"::ffff:0:0/96", "10.1.2.3", true},
        {"::ffff:0:0/96", "::ffff:10.1.2.3", true},
        {"::ffff:0:0/96", "::1", false},
        {"::ffff:10.0.0.0/104", "10.9.9.9", true},
        {"::ffff:10.0.0.0/104", "11.0.0.1", false},
    };
    for (const auto& c : cases) {
        auto net = parse_network(c.net);
        ASSERT_TRUE(net.has_value()) << c.net;
        EXPECT_EQ(net->contains(ip(c.ip)), c.want) << c.net << " contains " << c.ip;
    }
}

TEST(Network, ContainsRejectsMalformedAddresses) {
    auto net = parse_network("0.0.0.0/0");
    ASSERT_TRUE(net.has_value());
    EXPECT_FALSE(net->contains({}));
    EXPECT_FALSE(net->contains({1, 2, 3}));
    EXPECT_FALSE(net->contains(std::vector<unsigned char>(17, 0)));
    EXPECT_FALSE(Network{}.contains(ip("1.2.3.4")));  // a default Network contains nothing
}

TEST(Network, Parses) {
    struct Case {
        const char* text;
        std::size_t addr_size;
        unsigned prefix;
    };
    const Case cases[] = {
        {"127.0.0.0/8", 4, 8}, {"10.1.2.3", 4, 32},     {"0.0.0.0/0", 4, 0},   {"::1/128", 16, 128},
        {"::/0", 16, 0},       {"2001:db8::", 16, 128}, {"10.0.0.0/08", 4, 8},
    };
    for (const auto& c : cases) {
        auto net = parse_network(c.text);
        ASSERT_TRUE(net.has_value()) << c.text;
        EXPECT_EQ(net->addr.size(), c.addr_size) << c.text;
        EXPECT_EQ(net->prefix, c.prefix) << c.text;
        EXPECT_EQ(net->text, c.text);
    }
}

TEST(Network, RejectsBadSpellings) {
    const char* cases[] = {"",
                           "/8",
                           "10.0.0.0/",
                           "10.0.0.0/33",
                           "::/129",
                           "10.0.0.0/-1",
                           "10.0.0.0/+8",
                           "10.0.0.0/8/8",
                           "10.1.2.3/8",
                           "2001:db8::1/32",
                           "10.0.0",
                           "localhost",
                           "10.0.0.0 /8",
                           "[::1]/128",
                           "fe80::1%eth0/64",
                           "010.0.0.0/8"};
    for (const char* c : cases) EXPECT_FALSE(parse_network(c).has_value()) << '"' << c << '"';
}

TEST(Endpoint, Parses) {
    struct Case {
        const char* text;
        unsigned short default_port;
        const char* host;
        unsigned short port;
        const char* formatted;
    };
    const Case cases[] = {
        {"127.0.0.1:2525", 0, "127.0.0.1", 2525, "127.0.0.1:2525"},
        {"[::1]:2525", 0, "::1", 2525, "[::1]:2525"},
        {"0.0.0.0:25", 0, "0.0.0.0", 25, "0.0.0.0:25"},
        {"[::]:465", 0, "::", 465, "[::]:465"},
        {"[::0001]:1", 0, "::1", 1, "[::1]:1"},  // canonical spelling
        {"[2001:DB8::1]:65535", 0, "2001:db8::1", 65535, "[2001:db8::1]:65535"},
        {"[::ffff:192.0.2.1]:25", 0, "::ffff:192.0.2.1", 25, "[::ffff:192.0.2.1]:25"},
        {"192.0.2.1", 53, "192.0.2.1", 53, "192.0.2.1:53"},  // port may be left out with a default
        {"192.0.2.1:5353", 53, "192.0.2.1", 5353, "192.0.2.1:5353"},
        {"::1", 53, "::1", 53, "[::1]:53"},
        {"[::1]", 53, "::1", 53, "[::1]:53"},
        {"[::1]:5353", 53, "::1", 5353, "[::1]:5353"},
        {"::1:53", 53, "::1:53", 53, "[::1:53]:53"},  // a bare v6 literal never carries a port
        // RFC 5952 canonical text
        {"[2001:0db8:0:0:1:0:0:1]:25", 0, "2001:db8::1:0:0:1", 25, "[2001:db8::1:0:0:1]:25"},
        {"[2001:db8:0:1:1:1:1:1]:25", 0, "2001:db8:0:1:1:1:1:1", 25, "[2001:db8:0:1:1:1:1:1]:25"},
        {"[1:0:0:0:0:0:0:0]:25", 0, "1::", 25, "[1::]:25"},
        {"[0:0:0:0:0:0:0:2]:25", 0, "::2", 25, "[::2]:25"},
        {"[::FFFF:C000:0201]:25", 0, "::ffff:192.0.2.1", 25, "[::ffff:192.0.2.1]:25"},
    };
    for (const auto& c : cases) {
        auto ep = parse_endpoint(c.text, c.default_port);
        ASSERT_TRUE(ep.has_value()) << c.text;
        EXPECT_EQ(ep->host, c.host) << c.text;
        EXPECT_EQ(ep->port, c.port) << c.text;
        EXPECT_EQ(ep->to_string(), c.formatted) << c.text;
    }
}

TEST(Endpoint, RejectsBadSpellings) {
    struct Case {
        const char* text;
        unsigned short default_port;
    };
    const Case cases[] = {
        {"", 0},
        {"127.0.0.1", 0},
        {"127.0.0.1:", 0},
        {"127.0.0.1:0", 0},
        {"127.0.0.1:65536", 0},
        {"127.0.0.1:99999999", 0},
        {"127.0.0.1:-1", 0},
        {"127.0.0.1:+25", 0},
        {"127.0.0.1:25x", 0},
        {"127.0.0.1: 25", 0},
        {"::1:2525", 0},
        {"[::1]", 0},
        {"[::1]:", 0},
        {"[::1]2525", 0},
        {"[::1:2525", 0},
        {"[127.0.0.1]:25", 0},
        {"localhost:25", 0},
        {"mx.example.com:25", 0},
        {"1.2.3:25", 0},
        {":25", 0},
        {"[]:25", 0},
        {"[fe80::1%eth0]:25", 0},
        {"", 53},
        {"[::1]:0", 53},
        {"localhost", 53},
        {"1.2.3.4:", 53},
    };
    for (const auto& c : cases) {
        EXPECT_FALSE(parse_endpoint(c.text, c.default_port).has_value())
            << '"' << c.text << "\" default " << c.default_port;
    }
}

TEST(ParseIp, AcceptsOnlyLiterals) {
    EXPECT_EQ(ip("10.0.0.1"), (std::vector<unsigned char>{10, 0, 0, 1}));
    EXPECT_EQ(ip("::1").size(), 16u);
    const char* bad[] = {"", "10.0.0", "10.0.0.256", "010.0.0.1", "10.0.0.1 ", "[::1]", "::1%lo", "host"};
    for (const char* b : bad) EXPECT_FALSE(parse_ip(b).has_value()) << '"' << b << '"';
}
