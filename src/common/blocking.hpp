// Runs blocking work (SQLite, Argon2id, GMime) on a thread pool and resumes the awaiting coroutine
// on its own executor: I/O threads never block (docs/design.md). Include only where Asio is used.
// run_blocking is deliberately not a coroutine: g++ 12 mis-destroys lambdas with non-trivial
// captures passed into coroutine parameters; callers pass a named lambda capturing references.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace mailward::common {

template <class R, class F>
boost::asio::awaitable<R> run_blocking(boost::asio::thread_pool& pool, F f) {
    namespace asio = boost::asio;
    return asio::async_initiate<decltype(asio::use_awaitable), void(R)>(
        [&pool, f = std::move(f)](auto handler) mutable {
            auto ex = asio::get_associated_executor(handler);
            auto work = asio::make_work_guard(ex);
            asio::post(pool, [f = std::move(f), handler = std::move(handler), ex, work]() mutable {
                R r = f();
                asio::post(ex, [handler = std::move(handler), r = std::move(r)]() mutable {
                    std::move(handler)(std::move(r));
                });
            });
        },
        asio::use_awaitable);
}

}  // namespace mailward::common
