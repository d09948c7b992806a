// Internal to src/server: AUTH throttling per client network, after Postfix's anvil. Argon2id
// verifications go to the blocking pool at most one per client network at a time (the rest of that
// network's attempts wait in its own queue), so one client's failed logins cannot queue work ahead
// of everyone else's; and a network with max_failures failed logins within window is refused (454)
// without any Argon2id work until the window has passed.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace mailward::server {

class AuthQueue {
  public:
    using Clock = std::chrono::steady_clock;
    AuthQueue(boost::asio::thread_pool& pool, std::size_t max_failures, Clock::duration window)
        : pool_(pool), max_failures_(max_failures), window_(window) {}

    // Runs job on the pool when it is net's turn.
    void submit(const std::string& net, std::function<void()> job);
    // True while net has had max_failures failures in the current window.
    bool blocked(const std::string& net, Clock::time_point now = Clock::now());
    void record_failure(const std::string& net, Clock::time_point now = Clock::now());

  private:
    struct Net {
        bool running = false;
        std::deque<std::function<void()>> waiting;
        std::size_t failures = 0;
        Clock::time_point window_start{};
    };
    void run(const std::string& net, std::function<void()> job);
    void sweep(Clock::time_point now);  // drops idle networks whose window has passed; mu_ held

    boost::asio::thread_pool& pool_;
    const std::size_t max_failures_;
    const Clock::duration window_;
    std::mutex mu_;
    std::map<std::string, Net> nets_;
    std::size_t sweep_at_ = 1024;
};

}  // namespace mailward::server
