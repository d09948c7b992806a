// Escrow's background work while mailward serves: the sealer (recipients awaiting escrow are sealed
// and their notice queued, every second) and the lifecycle sweep (expiry and purge, every minute).
// Both block (SQLite, libsodium, GMime), so they run on a thread pool; the loop itself is a
// coroutine on the caller's executor. serve starts one Sweeper and stops it at shutdown.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>

#include "escrow/service.hpp"

namespace mailward::escrow {

class Sweeper {
  public:
    // svc and pool must outlive the loop (the executor's run).
    Sweeper(EscrowService& svc, boost::asio::thread_pool& pool) : svc_(svc), pool_(pool) {}
    Sweeper(const Sweeper&) = delete;
    Sweeper& operator=(const Sweeper&) = delete;

    // Spawns the loop on ex: a sealing pass at once and then every second, a sweep at once and
    // then every minute. Failures are logged ("escrow: sealing failed: ...", "escrow: expiry sweep
    // failed: ...") and the loop goes on.
    void start(const boost::asio::any_io_executor& ex);
    // The loop ends at its next tick. Thread-safe.
    void stop() { stopping_ = true; }

  private:
    EscrowService& svc_;
    boost::asio::thread_pool& pool_;
    std::atomic<bool> stopping_{false};
};

}  // namespace mailward::escrow
