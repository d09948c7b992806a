// The delivery engine's pool of idle SMTP sessions, by reuse key: see pool.hpp.
#include "delivery/pool.hpp"

namespace mailward::delivery {
namespace asio = boost::asio;

void ConnectionPool::put(const std::string& key, std::unique_ptr<outbound::SmtpClient> client) {
    if (client) idle_.emplace(key, Idle{std::move(client), Clock::now()});
}

asio::awaitable<std::unique_ptr<outbound::SmtpClient>> ConnectionPool::take(std::string key) {
    for (;;) {
        auto it = idle_.find(key);
        if (it == idle_.end()) co_return nullptr;
        auto idle = std::move(it->second);
        idle_.erase(it);
        if (Clock::now() - idle.since < max_idle_) co_return std::move(idle.client);
        co_await idle.client->quit();  // stale: the peer may have closed it already
    }
}

asio::awaitable<void> ConnectionPool::close_all() {
    while (!idle_.empty()) {
        auto it = idle_.begin();
        auto client = std::move(it->second.client);
        idle_.erase(it);
        co_await client->quit();
    }
}

}  // namespace mailward::delivery
