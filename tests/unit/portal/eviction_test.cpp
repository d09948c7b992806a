// The portal limiter's room-making (ConnectionLimiter::open, portal/limits.hpp) as tables: when the
// table is full, a newcomer takes the place of the longest-waiting connection of the key holding
// the most, if that key holds at least two more than the newcomer's; busy connections and keys
// that hold no more than the newcomer's are never chosen.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "portal/limits.hpp"

using namespace mailward::portal;

namespace {

TEST(Eviction, Sequences) {
    using V = ConnectionVerdict;
    enum class Do { open, busy, wait, close };
    struct Op {
        Do what;
        std::string name;    // the connection's name in this case (open: new; others: an opened one)
        std::string key;     // open: its key
        V verdict;           // open: expected
        std::string victim;  // open: the connection whose place it takes ("" = none)
        Op(Do w, std::string n, std::string k = "", V v = V::serve, std::string vic = "")
            : what(w), name(std::move(n)), key(std::move(k)), verdict(v), victim(std::move(vic)) {}
    };
    struct Case {
        std::string name;
        ConnectionRules rules;
        std::vector<Op> ops;
        std::size_t served_after;
    } cases[] = {
        {"full: a newcomer takes the place of the key holding two more",
         {3, 3, 1, 5},
         {{Do::open, "a1", "a"},
          {Do::open, "a2", "a"},
          {Do::open, "b1", "b"},
          {Do::open, "c1", "c", V::serve, "a1"}},  // a holds 2 >= 0 + 2
         3},
        {"the longest-waiting of that key goes",
         {3, 3, 1, 5},
         {{Do::open, "a1", "a"},
          {Do::open, "a2", "a"},
          {Do::open, "a3", "a"},
          {Do::busy, "a1"},
          {Do::wait, "a1"},  // waits again (keep-alive), now the most recent
          {Do::open, "b1", "b", V::serve, "a2"}},
         3},
        {"busy connections are never chosen",
         {3, 3, 1, 5},
         {{Do::open, "a1", "a"},
          {Do::open, "a2", "a"},
          {Do::open, "a3", "a"},
          {Do::busy, "a1"},
          {Do::busy, "a2"},
          {Do::busy, "a3"},
          {Do::open, "b1", "b", V::drop}},
         3},
        {"keys cannot push each other out in turn",
         {4, 4, 1, 5},
         {{Do::open, "a1", "a"},
          {Do::open, "a2", "a"},
          {Do::open, "b1", "b"},
          {Do::open, "b2", "b"},
          {Do::open, "c1", "c", V::serve, "a1"},  // a 2, b 2, c 0: a (oldest) gives one
          {Do::open, "d1", "d", V::serve, "b1"},  // b 2 now holds the most
          {Do::open, "e1", "e", V::drop},         // everyone holds one: nobody two more than e
          {Do::open, "a3", "a", V::drop}},        // a holds 1, nobody holds 3
         4},
        {"a replaced connection's end frees nothing twice",
         {2, 2, 1, 5},
         {{Do::open, "a1", "a"},
          {Do::open, "a2", "a"},
          {Do::open, "b1", "b", V::serve, "a1"},
          {Do::close, "a1"},
          {Do::open, "c1", "c", V::drop},  // still full: a2, b1
          {Do::close, "a2"},
          {Do::open, "c2", "c"}},
         2},
        {"over the per-key limit: refused as before, even when full",
         {2, 1, 1, 5},
         {{Do::open, "a1", "a"}, {Do::open, "b1", "b"}, {Do::open, "a2", "a", V::drop}},
         2},
        {"not full: no one is closed",
         {10, 2, 1, 5},
         {{Do::open, "a1", "a"}, {Do::open, "a2", "a"}, {Do::open, "a3", "a", V::refuse}, {Do::open, "b1", "b"}},
         3},
    };
    for (const auto& c : cases) {
        ConnectionLimiter limiter(c.rules);
        std::map<std::string, std::uint64_t> ids;
        std::map<std::uint64_t, std::string> names;
        std::int64_t clock = 0;
        std::size_t step = 0;
        for (const auto& op : c.ops) {
            const std::string where = c.name + ", step " + std::to_string(step++);
            switch (op.what) {
                case Do::open: {
                    auto got = limiter.open(op.key, ++clock);
                    EXPECT_EQ(got.verdict, op.verdict) << where;
                    EXPECT_EQ(got.victim ? names[got.victim] : "", op.victim) << where;
                    if (got.verdict == V::serve) {
                        EXPECT_NE(got.id, 0u) << where;
                        ids[op.name] = got.id;
                        names[got.id] = op.name;
                    }
                    break;
                }
                case Do::busy: limiter.waiting(ids.at(op.name), false, ++clock); break;
                case Do::wait: limiter.waiting(ids.at(op.name), true, ++clock); break;
                case Do::close: limiter.close(ids.at(op.name)); break;
            }
        }
        EXPECT_EQ(limiter.served(), c.served_after) << c.name;
    }
}

}  // namespace
