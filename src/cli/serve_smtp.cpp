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
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <functional>
#include <thread>

#include "cli/serve_internal.hpp"
#include "common/duration.hpp"
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
    // SIGTERM drains: no new connection, sessions finish their transaction, up to
    // [server] shutdown_timeout; a second SIGTERM stops at once.
    // The handlers below share their state: one strand (io runs on several threads).
    auto lifecycle = boost::asio::make_strand(io);
    config::Config running = cfg;
    auto stop_now = [&] {
        submission->stop();
        io.stop();
    };
    boost::asio::steady_timer drain_poll(lifecycle);
    std::chrono::steady_clock::time_point drain_until{};
    std::function<void(const boost::system::error_code&)> poll_drain = [&](const boost::system::error_code& ec) {
        if (ec) return;
        const std::size_t open = submission->connections();
        if (open == 0 || std::chrono::steady_clock::now() >= drain_until) {
            if (open > 0) spdlog::warn("submission: {} session(s) still open at the shutdown timeout: closed", open);
            stop_now();
            return;
        }
        drain_poll.expires_after(std::chrono::milliseconds(20));
        drain_poll.async_wait(poll_drain);
    };
    boost::asio::signal_set signals(lifecycle, SIGTERM);
    bool draining = false;
    std::function<void(const boost::system::error_code&, int)> on_term = [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        if (draining) {
            stop_now();
            return;
        }
        draining = true;
        spdlog::info(
            "submission: draining: {} session(s) open, up to {}", submission->connections(),
            common::format_duration(std::chrono::duration_cast<common::Duration>(running.server.shutdown_timeout)));
        submission->drain();
        drain_until = std::chrono::steady_clock::now() + running.server.shutdown_timeout;
        poll_drain({});
        signals.async_wait(on_term);
    };
    signals.async_wait(on_term);
    // SIGHUP (forwarded by serve after it validated the file): new sessions take the new
    // configuration and certificate; open sessions keep theirs.
    boost::asio::signal_set hup(lifecycle, SIGHUP);
    std::function<void(const boost::system::error_code&, int)> on_hup = [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        if (reload_child_config(running, ctx.name)) {
            auto next_tls = reload_tls(submission_cert_files(running), ctx.name, ctx.user);
            submission->reload(running, next_tls);
            spdlog::info("submission: reloaded{}", next_tls ? "" : " (the certificate stays)");
        }
        tell_parent(wake_fd, kReloadedByte);
        hup.async_wait(on_hup);
    };
    hup.async_wait(on_hup);
    tell_parent(wake_fd, kReadyByte);
    common::unblock_stop_signals();  // blocked by serve: a SIGTERM before this line waited
    run_io(io);
    (*store)->close();
    spdlog::info("submission stopped");
    return 0;
}

}  // namespace mailward::cli
