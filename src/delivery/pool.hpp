// The delivery engine's connection pool (Postfix's connection cache): idle SMTP sessions kept by
// outbound::reuse_key() - every input of the checks a connection passed when it was opened, and
// the message's REQUIRETLS - so a session is reused only for a destination with the same checks.
// A session idle longer than the pool's limit (as smtp_connection_cache_time_limit, 2 s) is
// closed, not reused: the peer may have dropped it. Used on one strand only.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "outbound/smtp_client.hpp"

namespace mailward::delivery {

class ConnectionPool {
  public:
    using Clock = std::chrono::steady_clock;
    static constexpr Clock::duration kDefaultIdle = std::chrono::seconds(2);
    explicit ConnectionPool(Clock::duration max_idle = kDefaultIdle) : max_idle_(max_idle) {}

    // Keeps client, idle from now, for a later message with the same key.
    void put(const std::string& key, std::unique_ptr<outbound::SmtpClient> client);
    // An idle session for key that is fresh, or nullptr; stale ones met on the way are closed (QUIT).
    boost::asio::awaitable<std::unique_ptr<outbound::SmtpClient>> take(std::string key);
    // At stop: QUIT every idle session.
    boost::asio::awaitable<void> close_all();

    std::size_t size() const { return idle_.size(); }

  private:
    struct Idle {
        std::unique_ptr<outbound::SmtpClient> client;
        Clock::time_point since;
    };
    Clock::duration max_idle_;
    std::multimap<std::string, Idle> idle_;
};

}  // namespace mailward::delivery
