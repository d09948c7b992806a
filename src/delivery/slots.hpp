// Per-destination concurrency for the delivery engine ([delivery] max_per_destination, as Postfix's
// default_destination_concurrency_limit): the attempts running to each domain and, in arrival
// order, the deliveries waiting for one of them to end. A slot that ends is handed to the first
// waiter directly (no polling: a waiter starts the moment it may). Used on one strand only.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <string>

namespace mailward::delivery {

class DestinationSlots {
  public:
    using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;
    // limit: attempts at once per domain (the configuration makes it at least 1).
    DestinationSlots(Strand& strand, std::size_t limit);

    // Returns when a slot for domain is ours: at once under the limit, else when a slot is handed
    // over (first come, first served) or stop() was called.
    boost::asio::awaitable<void> acquire(std::string domain);
    // Ends our slot for domain: handed to its first waiter, if any (and not stopping).
    void release(const std::string& domain);
    // At stop: every waiter goes on (and finds the engine stopping); no more waiting after it.
    void stop();

    std::size_t active(const std::string& domain) const;   // slots held now
    std::size_t waiting(const std::string& domain) const;  // deliveries in line

  private:
    struct Waiter {
        explicit Waiter(Strand& s) : timer(s) {}
        boost::asio::steady_timer timer;
        bool granted = false;
    };
    struct Domain {
        std::size_t active = 0;
        std::deque<std::shared_ptr<Waiter>> waiting;
    };
    Strand& strand_;
    std::size_t limit_;
    bool stopping_ = false;
    std::map<std::string, Domain> per_domain_;
};

}  // namespace mailward::delivery
