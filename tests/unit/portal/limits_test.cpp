// The portal's connection limits as tables: which key an address counts under (IPv4, IPv4-mapped,
// IPv6 by its /64), and sequences of connections opening and closing against the limiter.
#include <gtest/gtest.h>

#include "portal/limits.hpp"

using namespace mailward::portal;

namespace {

TEST(Limits, AddressKeys) {
    struct Row {
        std::string ip;
        std::optional<std::string> want;
    } rows[] = {
        {"127.0.0.1", "127.0.0.1"},
        {"192.0.2.10", "192.0.2.10"},
        {"::ffff:192.0.2.10", "192.0.2.10"},  // the same client over a dual-stack socket
        {"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
        {"2001:db8:1:2::ffff", "2001:db8:1:2::/64"},  // same /64: same key
        {"2001:DB8:1:3::1", "2001:db8:1:3::/64"},     // canonical spelling
        {"::1", "::/64"},
        {"fe80::1%eth0", std::nullopt},
        {"192.0.2", std::nullopt},
        {"", std::nullopt},
        {"example.test", std::nullopt},
    };
    for (const auto& r : rows) EXPECT_EQ(address_key(r.ip), r.want) << r.ip;
}

TEST(Limits, ConnectionSequences) {
    using V = ConnectionVerdict;
    struct Op {
        bool open;  // false: release a connection admitted earlier with verdict
        std::string key;
        V verdict;  // open: expected; release: what it was admitted with
    };
    struct Case {
        std::string name;
        ConnectionRules rules;
        std::vector<Op> ops;
        std::size_t served_after;
    } cases[] = {
        {"per address, then another address still served",
         {10, 2, 1, 5},
         {{true, "a", V::serve},
          {true, "a", V::serve},
          {true, "a", V::refuse},
          {true, "a", V::drop},
          {true, "b", V::serve}},
         3},
        {"a released place is free again",
         {10, 2, 1, 5},
         {{true, "a", V::serve},
          {true, "a", V::serve},
          {false, "a", V::serve},
          {true, "a", V::serve},
          {true, "a", V::refuse}},
         2},
        {"a finished refusal frees a refusal",
         {10, 1, 1, 5},
         {{true, "a", V::serve},
          {true, "a", V::refuse},
          {true, "a", V::drop},
          {false, "a", V::refuse},
          {true, "a", V::refuse}},
         1},
        {"the total cap drops everyone, any address",
         {3, 2, 1, 5},
         {{true, "a", V::serve},
          {true, "b", V::serve},
          {true, "c", V::serve},
          {true, "d", V::drop},
          {false, "b", V::serve},
          {true, "d", V::serve}},
         3},
        {"refusals are capped in all",
         {10, 1, 2, 3},
         {{true, "a", V::serve},
          {true, "b", V::serve},
          {true, "a", V::refuse},
          {true, "a", V::refuse},
          {true, "b", V::refuse},
          {true, "b", V::drop},
          {true, "a", V::drop}},
         2},
        {"releasing what was never admitted changes nothing",
         {10, 1, 1, 5},
         {{false, "x", V::serve}, {false, "x", V::drop}, {true, "x", V::serve}, {true, "x", V::refuse}},
         1},
    };
    for (const auto& c : cases) {
        ConnectionLimiter limiter(c.rules);
        std::size_t step = 0;
        for (const auto& op : c.ops) {
            if (op.open) EXPECT_EQ(limiter.admit(op.key), op.verdict) << c.name << ", step " << step;
            else limiter.release(op.key, op.verdict);
            ++step;
        }
        EXPECT_EQ(limiter.served(), c.served_after) << c.name;
    }
}

}  // namespace
