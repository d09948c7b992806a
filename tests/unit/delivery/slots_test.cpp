// DestinationSlots ([delivery] max_per_destination) as a table: how many deliveries to one domain
// start at once under a limit, that a slot that ends goes to the first waiter (FIFO hand-over),
// that domains do not share slots, and that stop() lets every waiter go on.
#include "delivery/slots.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <string>
#include <vector>

using namespace mailward::delivery;
namespace asio = boost::asio;

namespace {

// A delivery: takes a slot for domain and notes that it started (a coroutine over plain
// parameters, not a capturing lambda: see common/blocking.hpp on g++ 12).
asio::awaitable<void> deliver(DestinationSlots* slots, std::string domain, int id, std::vector<int>* started) {
    co_await slots->acquire(domain);
    started->push_back(id);
}

struct Fixture {
    explicit Fixture(std::size_t limit) : strand(asio::make_strand(io)), slots(strand, limit) {}
    void spawn(const std::string& domain, int id) {
        asio::co_spawn(strand, deliver(&slots, domain, id, &started), asio::detached);
        run_ready();
    }
    void release(const std::string& domain) {
        slots.release(domain);
        run_ready();
    }
    void run_ready() {  // what can run now (the context stops whenever it runs out of work)
        io.restart();
        io.poll();
    }
    asio::io_context io;
    DestinationSlots::Strand strand;
    DestinationSlots slots;
    std::vector<int> started;
};

}  // namespace

TEST(DestinationSlots, StartAtOnceUpToTheLimit) {
    struct Case {
        std::size_t limit;
        int deliveries;
        std::size_t started, waiting;
    };
    const Case cases[] = {{1, 1, 1, 0}, {1, 3, 1, 2}, {2, 5, 2, 3}, {4, 3, 3, 0}, {3, 3, 3, 0}};
    for (const auto& c : cases) {
        SCOPED_TRACE("limit " + std::to_string(c.limit) + ", " + std::to_string(c.deliveries) + " deliveries");
        Fixture f(c.limit);
        for (int i = 0; i < c.deliveries; ++i) f.spawn("a.test", i);
        EXPECT_EQ(f.started.size(), c.started);
        EXPECT_EQ(f.slots.active("a.test"), c.started);
        EXPECT_EQ(f.slots.waiting("a.test"), c.waiting);
    }
}

TEST(DestinationSlots, AnEndedSlotGoesToTheFirstWaiter) {
    Fixture f(2);
    for (int i = 0; i < 5; ++i) f.spawn("a.test", i);
    ASSERT_EQ(f.started, (std::vector<int>{0, 1}));
    const std::vector<std::vector<int>> after_each_release = {{0, 1, 2}, {0, 1, 2, 3}, {0, 1, 2, 3, 4}};
    for (const auto& want : after_each_release) {
        f.release("a.test");
        EXPECT_EQ(f.started, want);
        EXPECT_EQ(f.slots.active("a.test"), 2u);  // handed over, never over the limit
    }
    EXPECT_EQ(f.slots.waiting("a.test"), 0u);
    f.release("a.test");
    EXPECT_EQ(f.slots.active("a.test"), 1u);
    f.release("a.test");
    EXPECT_EQ(f.slots.active("a.test"), 0u);
    f.release("a.test");  // one release too many: no underflow
    EXPECT_EQ(f.slots.active("a.test"), 0u);
}

TEST(DestinationSlots, DomainsDoNotShareSlots) {
    Fixture f(1);
    f.spawn("a.test", 0);
    f.spawn("a.test", 1);
    f.spawn("b.test", 2);
    EXPECT_EQ(f.started, (std::vector<int>{0, 2}));
    f.release("b.test");  // b's slot ending does not start a's waiter
    EXPECT_EQ(f.started, (std::vector<int>{0, 2}));
    f.release("a.test");
    EXPECT_EQ(f.started, (std::vector<int>{0, 2, 1}));
}

TEST(DestinationSlots, StopLetsEveryWaiterGoOn) {
    Fixture f(1);
    for (int i = 0; i < 3; ++i) f.spawn("a.test", i);
    ASSERT_EQ(f.started, (std::vector<int>{0}));
    f.slots.stop();
    f.run_ready();
    EXPECT_EQ(f.started, (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(f.slots.waiting("a.test"), 0u);
    f.spawn("a.test", 3);  // after stop nobody waits
    EXPECT_EQ(f.started, (std::vector<int>{0, 1, 2, 3}));
}
