// common::await_callback, run_blocking (blocking.hpp) and wait_callback (wait_callback.hpp), the one
// idiom for callbacks and blocking calls: the awaiting coroutine resumes on its own I/O thread with
// the value, however and wherever (inline, stored, another thread) the callback fires.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "common/blocking.hpp"
#include "common/wait_callback.hpp"

using namespace mailward;
namespace asio = boost::asio;

namespace {

// How the operation under test calls its callback.
enum class Fire { inline_now, other_thread_later, stored_then_called };

struct Case {
    const char* name;
    Fire fire;
    int value;
};

// Stands in for a store writer / queue: start() keeps the callback, finish() calls it.
struct Pending {
    std::function<void(int)> done;
};

}  // namespace

TEST(AwaitCallback, ResumesOnTheAwaitingIoThreadWithTheValue) {
    const Case cases[] = {
        {"called inside start", Fire::inline_now, 7},
        {"called 50 ms later from another thread", Fire::other_thread_later, 42},
        {"stored, then called from the io thread", Fire::stored_then_called, -3},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        asio::io_context io;
        std::optional<int> got;
        std::thread::id resumed_on;
        std::thread worker;
        Pending pending;
        auto op = [&]() -> asio::awaitable<void> {
            auto start = [&](auto done) {
                switch (c.fire) {
                    case Fire::inline_now: done(c.value); break;
                    case Fire::other_thread_later:
                        worker = std::thread([done, v = c.value] {
                            std::this_thread::sleep_for(std::chrono::milliseconds(50));
                            done(v);
                        });
                        break;
                    case Fire::stored_then_called: pending.done = done; break;
                }
            };
            got = co_await common::await_callback<int>(start);
            resumed_on = std::this_thread::get_id();
        };
        asio::co_spawn(io, op(), asio::detached);
        if (c.fire == Fire::stored_then_called) {
            // The coroutine runs up to its co_await, which stores the callback.
            while (!pending.done && io.run_one() > 0) {
            }
            EXPECT_FALSE(got.has_value());
            ASSERT_TRUE(pending.done);
            pending.done(c.value);
        }
        io.run();
        if (worker.joinable()) worker.join();
        ASSERT_TRUE(got.has_value());
        EXPECT_EQ(*got, c.value);
        EXPECT_EQ(resumed_on, std::this_thread::get_id());
    }
}

TEST(AwaitCallback, VoidCompletion) {
    asio::io_context io;
    bool resumed = false;
    std::thread worker;
    auto op = [&]() -> asio::awaitable<void> {
        auto start = [&](auto done) { worker = std::thread([done] { done(); }); };
        co_await common::await_callback<void>(start);
        resumed = true;
    };
    asio::co_spawn(io, op(), asio::detached);
    io.run();
    worker.join();
    EXPECT_TRUE(resumed);
}

TEST(RunBlocking, RunsOnThePoolAndResumesOnTheIoThread) {
    asio::io_context io;
    asio::thread_pool pool(1);
    std::thread::id ran_on, resumed_on;
    std::optional<std::string> got;
    auto op = [&]() -> asio::awaitable<void> {
        auto work = [&] {
            ran_on = std::this_thread::get_id();
            return std::string("from the pool");
        };
        got = co_await common::run_blocking<std::string>(pool, work);
        resumed_on = std::this_thread::get_id();
    };
    asio::co_spawn(io, op(), asio::detached);
    io.run();
    pool.join();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, "from the pool");
    EXPECT_NE(ran_on, std::this_thread::get_id());
    EXPECT_EQ(resumed_on, std::this_thread::get_id());
}

TEST(WaitCallback, ReturnsWhatTheCallbackGets) {
    const Case cases[] = {
        {"called inside start", Fire::inline_now, 5},
        {"called later from another thread", Fire::other_thread_later, 11},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        std::thread worker;
        auto start = [&](auto done) {
            if (c.fire == Fire::inline_now) {
                done(c.value);
            } else {
                worker = std::thread([done, v = c.value] {
                    std::this_thread::sleep_for(std::chrono::milliseconds(20));
                    done(v);
                });
            }
        };
        EXPECT_EQ(common::wait_callback<int>(start), c.value);
        if (worker.joinable()) worker.join();
    }
}
