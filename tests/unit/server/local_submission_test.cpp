// The pieces of local submission (`mailward sendmail`) that need no socket: the recipients -t reads
// from To/Cc/Bcc (field_addresses: groups, display names, folding, empty groups), and the trace
// field of a message from a local user (uid and name, no HELO or address).
#include <gtest/gtest.h>

#include "server/header_scan.hpp"
#include "server/received.hpp"

using namespace mailward::server;

TEST(LocalSubmission, FieldAddresses) {
    using V = std::vector<std::string>;
    struct Case {
        std::string msg;
        V addrs;
        bool malformed;
    } cases[] = {
        {"To: a@x\r\nCc: B <b@y>, c@z\r\nBcc: d@w\r\nFrom: f@f\r\n\r\nTo: body@no\r\n",
         {"a@x", "b@y", "c@z", "d@w"},
         false},
        {"To: \"Doe, J\" <j@x>,\r\n k@y (comment)\r\n\r\n", {"j@x", "k@y"}, false},
        {"To: team: a@x, b@x;, c@y\r\n\r\n", {"a@x", "b@x", "c@y"}, false},
        {"To: undisclosed-recipients:;\r\n\r\n", {}, false},
        {"Subject: none\r\n\r\n", {}, false},
        {"TO: A@X\r\ncc : b@y\r\n\r\n", {"A@X", "b@y"}, false},
        {"To: root\r\n\r\n", {}, true},
        {"To: <a@x\r\n\r\n", {}, true},
        {"Reply-To: r@x\r\nResent-To: s@x\r\n\r\n", {}, false},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.msg);
        auto r = field_addresses(c.msg, {"to", "cc", "bcc"});
        if (!c.malformed) {
            EXPECT_EQ(r.addresses, c.addrs);
        }
        EXPECT_EQ(r.malformed, c.malformed);
    }
}

TEST(LocalSubmission, ReceivedNamesTheLocalUser) {
    struct Case {
        unsigned uid;
        std::string user;
        std::string rcpt;
        std::string want;
    } cases[] = {
        {1000, "alice", "", "Received: by relay.example (mailward, from uid 1000 user alice)\r\n\tid Q1; "},
        {0, "root", "b@x", "Received: by relay.example (mailward, from uid 0 user root)\r\n\tid Q1\r\n\tfor <b@x>; "},
        // A user name cannot break the field (names come from the user database, still checked).
        {7, "a(b)\r\nX: y", "", "(mailward, from uid 7 user a?b???X:?y)"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.user);
        ReceivedInfo ri;
        ri.local = true;
        ri.local_uid = c.uid;
        ri.local_user = c.user;
        ri.helo = "ignored.helo";
        ri.client_address = "local";
        ri.by_host = "relay.example";
        ri.queue_id = "Q1";
        ri.single_recipient = c.rcpt;
        const std::string h = received_header(ri);
        EXPECT_NE(h.find(c.want), std::string::npos) << h;
        EXPECT_EQ(h.find("ignored.helo"), std::string::npos) << h;
        EXPECT_EQ(h.find(" with "), std::string::npos) << h;
        EXPECT_EQ(h.substr(h.size() - 2), "\r\n");
    }
}
