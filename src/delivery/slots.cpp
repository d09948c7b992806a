// Per-destination slots with a first-come, first-served hand-over: see slots.hpp.
#include "delivery/slots.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace mailward::delivery {
namespace asio = boost::asio;

DestinationSlots::DestinationSlots(Strand& strand, std::size_t limit) : strand_(strand), limit_(limit) {}

asio::awaitable<void> DestinationSlots::acquire(std::string domain) {
    auto& d = per_domain_[domain];
    if (d.active < limit_ || stopping_) {
        ++d.active;
        co_return;
    }
    auto w = std::make_shared<Waiter>(strand_);
    w->timer.expires_at(std::chrono::steady_clock::time_point::max());
    d.waiting.push_back(w);
    co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (w->granted) co_return;  // the slot of an attempt that ended was handed to us
    // Woken by stop(): leave the line and go on (the attempt finds the engine stopping).
    auto& again = per_domain_[domain];
    std::erase(again.waiting, w);
    ++again.active;
}

void DestinationSlots::release(const std::string& domain) {
    auto it = per_domain_.find(domain);
    if (it == per_domain_.end()) return;
    auto& d = it->second;
    if (!d.waiting.empty() && !stopping_) {
        auto w = std::move(d.waiting.front());
        d.waiting.pop_front();
        w->granted = true;
        w->timer.cancel();
        return;
    }
    if (d.active > 0) --d.active;
    if (d.active == 0 && d.waiting.empty()) per_domain_.erase(it);
}

void DestinationSlots::stop() {
    stopping_ = true;
    for (auto& [domain, d] : per_domain_)
        for (auto& w : d.waiting) w->timer.cancel();
}

std::size_t DestinationSlots::active(const std::string& domain) const {
    auto it = per_domain_.find(domain);
    return it == per_domain_.end() ? 0 : it->second.active;
}

std::size_t DestinationSlots::waiting(const std::string& domain) const {
    auto it = per_domain_.find(domain);
    return it == per_domain_.end() ? 0 : it->second.waiting.size();
}

}  // namespace mailward::delivery
