// The submission process of `mailward serve` (mailward-smtp; docs/design.md, "Process model"): the
// SMTP submission listeners (RFC 6409, RFC 8314 implicit TLS) on a store opened as
// store::Role::submission (it may write the queue, read users for AUTH, and write nothing else).
// Binds its listeners, drops to [server] user and serves until SIGTERM; each message it queues
// wakes serve's delivery engine through the wake pipe.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <thread>

#include "cli/serve_internal.hpp"
#include "common/log.hpp"
#include "common/privilege.hpp"
#include "common/process.hpp"
#include "server/server.hpp"
#include "store/store.hpp"

namespace mailward::cli {

int run_submission_process(const ChildContext& ctx, std::shared_ptr<boost::asio::ssl::context> tls) {
    const auto& cfg = ctx.cfg;
    common::set_log_process_name(ctx.name);
    ::signal(SIGINT, SIG_IGN);  // serve forwards SIGTERM
    // Opened with the user's file ownership: the -wal and -shm files it may create must be
    // usable by every process after the drop.
    auto store = [&] {
        common::CreateFilesAs as_user(ctx.user);
        return store::open(cfg, store::Role::submission);
    }();
    if (!store) {
        spdlog::critical("submission: cannot open the store: {}", store.error().message());
        return 1;
    }
    boost::asio::io_context io;
    const int wake_fd = ctx.wake_fd;
    std::atomic<bool> wake_pending{false};
    // A submission process of a serve that just died (SIGKILL) may still hold the ports a moment.
    std::unique_ptr<server::SubmissionServer> submission;
    for (int attempt = 0;; ++attempt) {
        submission = std::make_unique<server::SubmissionServer>(cfg, **store, tls);
        // One wake-up per turn of the event loop, not one per message: the completions of one
        // group commit run together, and the byte written after them covers them all.
        submission->set_on_queued([wake_fd, &io, &wake_pending] {
            if (wake_pending.exchange(true, std::memory_order_acq_rel)) return;
            boost::asio::post(io, [wake_fd, &wake_pending] {
                wake_pending.store(false, std::memory_order_release);
                common::wake(wake_fd);
            });
        });
        std::string error;
        if (submission->start(io, error)) break;
        submission->stop();
        if (attempt >= 20 || error.find("in use") == std::string::npos) {
            spdlog::critical("submission: {}", error);
            return 1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    if (!drop_in_child(ctx)) return 1;

    // This process's counters are in serve's shared table (common/metrics.hpp).
    boost::asio::signal_set signals(io, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec) return;
        submission->stop();
        io.stop();
    });
    common::unblock_stop_signals();  // blocked by serve: a SIGTERM before this line waited
    run_io(io);
    (*store)->close();
    spdlog::info("submission stopped");
    return 0;
}

}  // namespace mailward::cli
