// Header scanning at the end of DATA: Received: fields counted in the header section only, From:
// addresses read through display names, comments, quotes, groups and folding.
#include "server/header_scan.hpp"

#include <gtest/gtest.h>

using namespace mailward::server;

TEST(HeaderScan, CountReceived) {
    struct Case {
        std::string msg;
        std::size_t n;
    } cases[] = {
        {"", 0},
        {"Subject: x\r\n\r\nReceived: in the body\r\n", 0},
        {"Received: a\r\nreceived: b\r\nRECEIVED : c\r\n\tfolded\r\nX: y\r\n\r\nReceived: body\r\n", 3},
        {"Received-SPF: pass\r\nX-Received: a\r\n\r\n", 0},
        {"Subject: x\r\n Received: continuation, not a field\r\n\r\n", 0},
        {"Received: no body at all\r\nReceived: b", 2},
    };
    for (const auto& c : cases) EXPECT_EQ(count_received(c.msg), c.n) << c.msg;
}

TEST(HeaderScan, FromAddresses) {
    using V = std::vector<std::string>;
    struct Case {
        std::string msg;
        V addrs;
        bool malformed;
    } cases[] = {
        {"Subject: none\r\n\r\n", {}, false},
        {"From: alice@example.org\r\n\r\n", {"alice@example.org"}, false},
        {"From: Alice <alice@example.org>\r\n\r\n", {"alice@example.org"}, false},
        {"from: \"Bob, <bob@evil.example>\" <alice@example.org>\r\n\r\n", {"alice@example.org"}, false},
        {"From: (comment <x@evil.example>) alice@example.org\r\n\r\n", {"alice@example.org"}, false},
        {"From: a@example.org, B <b@example.net>\r\n\r\n", {"a@example.org", "b@example.net"}, false},
        {"From: Alice\r\n <alice@example.org>\r\n\r\n", {"alice@example.org"}, false},
        {"From: team: a@example.org, b@example.org;\r\n\r\n", {"a@example.org", "b@example.org"}, false},
        {"From: <@relay.example:alice@example.org>\r\n\r\n", {"alice@example.org"}, false},
        {"From: a@example.org\r\nFrom: b@evil.example\r\n\r\n", {"a@example.org", "b@evil.example"}, false},
        {"X: y\r\n\r\nFrom: body@evil.example\r\n", {}, false},
        {"From: alice\r\n\r\n", {}, true},
        {"From: \r\n\r\n", {}, true},
        {"From: <alice@example.org\r\n\r\n", {}, true},
        {"From: \"unterminated <a@example.org>\r\n\r\n", {}, true},
        {"From: <a@example.org> <b@evil.example>\r\n\r\n", {}, true},
        {"From: <a@example.org> b@evil.example\r\n\r\n", {}, true},
    };
    for (const auto& c : cases) {
        auto r = from_addresses(c.msg);
        EXPECT_EQ(r.malformed, c.malformed) << c.msg;
        if (!c.malformed) {  // braces: EXPECT_EQ is an if/else inside (-Wdangling-else)
            EXPECT_EQ(r.addresses, c.addrs) << c.msg;
        }
    }
}
