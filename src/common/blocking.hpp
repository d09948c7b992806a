// The one idiom for work an I/O thread must not wait for (docs/design.md): each turns it into an awaitable
// that resumes the awaiting coroutine on its own executor.
//   await_callback<R>(start): start(done) begins an operation that calls done(r) exactly once, on
//     any thread, now or later (the store's writer, the AUTH queue, libunbound, a shared fetch).
//   run_blocking<R>(pool, f): runs f() (SQLite, Argon2id, GMime, curl) on pool; built on the first.
// Neither is a coroutine: g++ 12 mis-destroys lambdas with non-trivial captures passed into
// coroutine parameters; callers pass a named lambda capturing references. Include only where Asio
// is used (common/wait_callback.hpp is the blocking counterpart for non-I/O threads).
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <type_traits>
#include <utility>

namespace mailward::common {

namespace detail {
template <class R>
struct CallbackSignature {
    using type = void(R);
};
template <>
struct CallbackSignature<void> {
    using type = void();
};
}  // namespace detail

// start is called once, inside the initiation, with done: a copyable callable taking R (nothing
// for R = void) that fits a std::function. done posts the result to the awaiting coroutine's
// executor, whose io_context it keeps from running out of work until then.
template <class R, class Start>
boost::asio::awaitable<R> await_callback(Start start) {
    namespace asio = boost::asio;
    return asio::async_initiate<decltype(asio::use_awaitable), typename detail::CallbackSignature<R>::type>(
        [start = std::move(start)](auto handler) mutable {
            auto ex = asio::get_associated_executor(handler);
            using Handler = decltype(handler);
            using Work = decltype(asio::make_work_guard(ex));
            struct State {
                Handler handler;
                Work work;
            };
            auto st = std::make_shared<State>(State{std::move(handler), asio::make_work_guard(ex)});
            if constexpr (std::is_void_v<R>) {
                std::move(start)([st]() {
                    asio::post(st->work.get_executor(), [st]() mutable { std::move(st->handler)(); });
                    st->work.reset();
                });
            } else {
                std::move(start)([st](R r) {
                    asio::post(st->work.get_executor(),
                               [st, r = std::move(r)]() mutable { std::move(st->handler)(std::move(r)); });
                    st->work.reset();
                });
            }
        },
        asio::use_awaitable);
}

template <class R, class F>
boost::asio::awaitable<R> run_blocking(boost::asio::thread_pool& pool, F f) {
    return await_callback<R>([&pool, f = std::move(f)](auto done) mutable {
        boost::asio::post(pool, [f = std::move(f), done = std::move(done)]() mutable { done(f()); });
    });
}

}  // namespace mailward::common
