// AuthQueue: see auth_queue.hpp. Failures are counted in a fixed window that opens at a network's
// first failure; idle entries are swept when the table has doubled since the last sweep.
#include "server/auth_queue.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace mailward::server {

void AuthQueue::submit(const std::string& net, std::function<void()> job) {
    {
        std::lock_guard lk(mu_);
        auto& n = nets_[net];
        if (n.running) {
            n.waiting.push_back(std::move(job));
            return;
        }
        n.running = true;
    }
    run(net, std::move(job));
}

void AuthQueue::run(const std::string& net, std::function<void()> job) {
    boost::asio::post(pool_, [this, net, job = std::move(job)]() mutable {
        job();
        std::function<void()> next;
        {
            std::lock_guard lk(mu_);
            auto it = nets_.find(net);
            if (it == nets_.end()) return;
            if (it->second.waiting.empty()) {
                it->second.running = false;
                if (it->second.failures == 0) nets_.erase(it);
                return;
            }
            next = std::move(it->second.waiting.front());
            it->second.waiting.pop_front();
        }
        // Behind every other network's queued work: the pool is FIFO.
        run(net, std::move(next));
    });
}

bool AuthQueue::blocked(const std::string& net, Clock::time_point now) {
    std::lock_guard lk(mu_);
    auto it = nets_.find(net);
    if (it == nets_.end()) return false;
    auto& n = it->second;
    if (n.failures > 0 && now - n.window_start >= window_) n.failures = 0;
    return n.failures >= max_failures_;
}

void AuthQueue::record_failure(const std::string& net, Clock::time_point now) {
    std::lock_guard lk(mu_);
    auto& n = nets_[net];
    if (n.failures == 0 || now - n.window_start >= window_) {
        n.failures = 0;
        n.window_start = now;
    }
    ++n.failures;
    if (nets_.size() >= sweep_at_) sweep(now);
}

void AuthQueue::sweep(Clock::time_point now) {
    for (auto it = nets_.begin(); it != nets_.end();) {
        const auto& n = it->second;
        if (!n.running && n.waiting.empty() && (n.failures == 0 || now - n.window_start >= window_)) {
            it = nets_.erase(it);
        } else {
            ++it;
        }
    }
    sweep_at_ = std::max<std::size_t>(1024, nets_.size() * 2);
}

}  // namespace mailward::server
