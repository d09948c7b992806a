// The blocking counterpart of common::await_callback (blocking.hpp), for code that already runs on
// a blocking-pool or CLI thread, never on an I/O thread: start(done) begins an operation that calls
// done(r) exactly once, on any thread; wait_callback returns r once it has. No Asio needed.
#pragma once

#include <future>
#include <memory>
#include <utility>

namespace mailward::common {

template <class R, class Start>
R wait_callback(Start&& start) {
    auto done = std::make_shared<std::promise<R>>();
    auto fut = done->get_future();
    std::forward<Start>(start)([done](R r) { done->set_value(std::move(r)); });
    return fut.get();
}

}  // namespace mailward::common
