// client_network: addresses cut to the configured prefix; IPv4-mapped counts as IPv4.
#include "server/client_net.hpp"

#include <gtest/gtest.h>

using mailward::server::client_network;

TEST(ClientNetwork, Table) {
    struct Case {
        const char* ip;
        unsigned v4, v6;
        const char* net;
    } cases[] = {
        {"192.0.2.7", 32, 64, "192.0.2.7/32"},
        {"192.0.2.7", 24, 64, "192.0.2.0/24"},
        {"192.0.2.7", 1, 64, "128.0.0.0/1"},
        {"127.0.0.2", 8, 64, "127.0.0.0/8"},
        {"::ffff:192.0.2.7", 24, 64, "192.0.2.0/24"},
        {"2001:db8:1:2:aaaa:bbbb:cccc:dddd", 32, 64, "2001:db8:1:2::/64"},
        {"2001:db8:1:2::1", 32, 64, "2001:db8:1:2::/64"},
        {"2001:db8:1:3::1", 32, 64, "2001:db8:1:3::/64"},
        {"2001:db8:1:2::1", 32, 48, "2001:db8:1::/48"},
        {"2001:db8:1:2::1", 32, 57, "2001:db8:1::/57"},
        {"::1", 32, 64, "::/64"},
        {"::1", 32, 128, "::1/128"},
        {"not an ip", 32, 64, ""},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(client_network(c.ip, c.v4, c.v6), c.net) << c.ip;
    }
    // Two addresses of one /64 share a key; different /64s do not.
    EXPECT_EQ(client_network("2001:db8::1", 32, 64), client_network("2001:db8::ffff:1", 32, 64));
    EXPECT_NE(client_network("2001:db8::1", 32, 64), client_network("2001:db8:0:1::1", 32, 64));
}
