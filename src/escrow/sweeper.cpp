// Escrow's sealer and lifecycle sweep as one loop: see sweeper.hpp.
#include "escrow/sweeper.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/blocking.hpp"

namespace mailward::escrow {
namespace {

// Seals what waits for escrow every second and sweeps expiry and purge every minute, on the pool.
// A coroutine over plain parameters (not a capturing lambda: see common/blocking.hpp on g++ 12).
boost::asio::awaitable<void> escrow_loop(EscrowService& svc, boost::asio::thread_pool& pool,
                                         const std::atomic<bool>& stopping) {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    auto last_sweep = std::chrono::steady_clock::time_point{};
    while (!stopping) {
        auto seal = [&svc] { return svc.seal_pending(std::chrono::system_clock::now()); };
        if (auto n = co_await common::run_blocking<Result<std::size_t>>(pool, seal); !n)
            spdlog::error("escrow: sealing failed: {}", n.error().message());
        if (std::chrono::steady_clock::now() - last_sweep >= std::chrono::minutes(1)) {
            auto sweep = [&svc] { return svc.sweep(std::chrono::system_clock::now()); };
            if (auto n = co_await common::run_blocking<Result<std::size_t>>(pool, sweep); !n)
                spdlog::error("escrow: expiry sweep failed: {}", n.error().message());
            last_sweep = std::chrono::steady_clock::now();
        }
        timer.expires_after(std::chrono::seconds(1));
        auto [ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        if (ec) break;
    }
}

}  // namespace

void Sweeper::start(const boost::asio::any_io_executor& ex) {
    boost::asio::co_spawn(ex, escrow_loop(svc_, pool_, stopping_), boost::asio::detached);
}

}  // namespace mailward::escrow
