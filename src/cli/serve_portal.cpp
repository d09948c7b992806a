// The portal process of `mailward serve` (mailward-portal; docs/design.md, "Process model"): the
// recipients' HTTPS portal with its own escrow service, on a store opened as store::Role::portal
// (it may write the queue and its escrow rows, never the policy tables or the keys) and its own
// connection to the key holder. Binds [escrow] listen, drops to [server] user, serves until
// SIGTERM; each reply or code mail it queues wakes serve's delivery engine. Also the helpers the
// children share (the escrow settings, the drop, running an io_context).
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cerrno>
#include <thread>

#include "cli/cli.hpp"
#include "cli/serve_internal.hpp"
#include "common/fsutil.hpp"
#include "common/log.hpp"
#include "common/privilege.hpp"
#include "common/process.hpp"
#include "config/reload.hpp"
#include "escrow/anchor.hpp"
#include "escrow/keyholder.hpp"
#include "portal/app.hpp"
#include "portal/web_server.hpp"
#include "store/store.hpp"
#include "tls/server_context.hpp"

namespace mailward::cli {

escrow::Brand escrow_brand(const config::Config& cfg) {
    escrow::Brand b;
    b.organization = config::organization_name(cfg);
    b.color = cfg.branding.color;
    b.support_contact = cfg.branding.support_contact;
    b.has_logo = !cfg.branding.logo_file.empty();
    b.language = escrow::language_of(cfg.branding.language).value_or(escrow::Lang::en);
    return b;
}

escrow::ServiceSettings escrow_service_settings(const config::Config& cfg) {
    escrow::ServiceSettings es;
    es.portal_url = cfg.escrow.url;
    es.hostname = cfg.server.hostname;
    es.expiry = std::chrono::duration_cast<std::chrono::seconds>(cfg.escrow.expiry);
    es.notify_sender = cfg.escrow.notify_sender;
    es.max_reply_bytes = cfg.portal.max_reply_size;
    es.reply_limits.per_message = cfg.portal.replies_per_message;
    es.reply_limits.per_session = cfg.portal.replies_per_session;
    es.reply_limits.window = std::chrono::ceil<std::chrono::seconds>(cfg.portal.reply_window);
    es.reply_limits.total_bytes = cfg.portal.max_replies_size;
    es.code_rules = escrow_code_rules(cfg);
    es.brand = escrow_brand(cfg);
    return es;
}

void tell_parent(int wake_fd, char byte) {
    for (int tries = 0; tries < 200; ++tries) {
        const ssize_t n = ::write(wake_fd, &byte, 1);
        if (n == 1) return;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN) return;                       // serve is gone
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // full of wake-ups serve reads
    }
}

std::pair<std::filesystem::path, std::filesystem::path> submission_cert_files(const config::Config& cfg) {
    if (!cfg.submission.cert.empty()) return {cfg.submission.cert, cfg.submission.key};
    return {cfg.server.data_dir / "tls" / "submission.crt", cfg.server.data_dir / "tls" / "submission.key"};
}

std::pair<std::filesystem::path, std::filesystem::path> portal_cert_files(const config::Config& cfg) {
    if (cfg.escrow.cert.empty()) return submission_cert_files(cfg);
    return {cfg.escrow.cert, cfg.escrow.key};
}

void set_log_level(std::string_view level) {
    auto lvl = spdlog::level::from_str(std::string(level));
    if (lvl == spdlog::level::off && level != "off") lvl = spdlog::level::info;
    spdlog::default_logger()->set_level(lvl);
}

bool reload_child_config(config::Config& running, std::string_view who) {
    config::ConfigError err;
    auto r = config::reload(running, err);
    if (!r) {
        spdlog::error("{}: reload refused: {}; the running configuration stays in force", who, err.message);
        return false;
    }
    running = std::move(r->config);
    set_log_level(running.server.log_level);
    return true;
}

std::shared_ptr<boost::asio::ssl::context> reload_tls(
    const std::pair<std::filesystem::path, std::filesystem::path>& files, std::string_view who,
    const std::optional<common::SystemUser>& user) {
    std::string error;
    auto ctx = tls::make_server_context(files.first, files.second, error);
    if (!ctx) {
        spdlog::warn("{}: certificate not reloaded, the old one stays in use: {}{}", who, error,
                     user ? " (after the start it is read as user " + user->name + ")" : std::string());
        return nullptr;
    }
    return *ctx;
}

void run_io(boost::asio::io_context& io) {
    const unsigned n = std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::thread> threads;
    for (unsigned i = 1; i < n; ++i) threads.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : threads) t.join();
}

bool drop_in_child(const ChildContext& ctx) {
    if (!ctx.user) return true;
    if (auto r = common::drop_privileges(*ctx.user); !r) {
        spdlog::critical("cannot switch to user {}: {}", ctx.user->name, r.error().message());
        return false;
    }
    if (!common::rearm_parent_death_signal()) return false;  // serve died meanwhile
    spdlog::info("{} (pid {}) running as user {} (uid {})", ctx.name, ::getpid(), ctx.user->name, ctx.user->uid);
    return true;
}

int run_portal_process(const ChildContext& ctx, std::shared_ptr<boost::asio::ssl::context> tls, int key_fd) {
    const auto& cfg = ctx.cfg;
    common::set_log_process_name(ctx.name);
    // serve forwards SIGTERM; a terminal's SIGINT to the whole group is serve's to handle.
    ::signal(SIGINT, SIG_IGN);
    auto keys = escrow::RemoteKeyHolder::connect(key_fd, std::chrono::seconds(60));
    if (!keys) {
        spdlog::critical("escrow portal: {}", keys.error().message);
        return 1;
    }
    // Opened with the user's file ownership: the -wal and -shm files it may create must be
    // usable by every process after the drop.
    auto store = [&] {
        common::CreateFilesAs as_user(ctx.user);
        return store::open(cfg, store::Role::portal);
    }();
    if (!store) {
        spdlog::critical("escrow portal: cannot open the store: {}", store.error().message());
        return 1;
    }
    boost::asio::io_context io;
    boost::asio::thread_pool pool(2);
    escrow::EscrowService service(**store, **keys, escrow_service_settings(cfg));
    const int wake_fd = ctx.wake_fd;
    service.set_on_queued([wake_fd] { common::wake(wake_fd); });
    portal::PortalSettings ps;
    ps.origin = portal::origin_of(cfg.escrow.url);
    ps.max_form_size = cfg.portal.max_form_size;
    ps.max_reply_size = cfg.portal.max_reply_size;
    ps.brand = escrow_brand(cfg);
    // The logo is read now, before the privilege drop, like the certificate: it may be root's.
    if (!cfg.branding.logo_file.empty()) {
        if (std::string why = config::read_logo(cfg.branding.logo_file, ps.logo); !why.empty()) {
            spdlog::critical("escrow portal: branding.logo_file \"{}\": {}", cfg.branding.logo_file.string(), why);
            return 1;
        }
        ps.logo_type = std::string(config::logo_content_type(ps.logo));
    }
    portal::Portal app(service, pool, ps);
    portal::HttpLimits hl;
    hl.max_body_bytes = portal::max_body_size(ps);
    hl.header_timeout = std::chrono::ceil<std::chrono::milliseconds>(cfg.portal.header_timeout);
    hl.body_timeout = std::chrono::ceil<std::chrono::milliseconds>(cfg.portal.body_timeout);
    hl.connections.total = cfg.portal.max_connections;
    hl.connections.per_address = cfg.portal.max_connections_per_address;
    // A portal process of a serve that just died (SIGKILL) may still hold the port for a moment.
    std::unique_ptr<portal::HttpsServer> server;
    std::string error;
    for (int attempt = 0;; ++attempt) {
        auto s = portal::HttpsServer::start(
            io, cfg.escrow.listen, tls,
            [&app](portal::HttpRequest req, portal::Respond respond) {
                app.handle(std::move(req), std::move(respond));
            },
            [&app](portal::HttpRequest req, portal::Admit admit) { app.admit(std::move(req), std::move(admit)); }, hl,
            error);
        if (s) {
            server = std::move(*s);
            break;
        }
        if (attempt >= 20 || error.find("in use") == std::string::npos) {
            spdlog::critical("escrow portal: {}", error);
            return 1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    spdlog::info("escrow portal on {} ({})", cfg.escrow.listen, cfg.escrow.url);
    if (!drop_in_child(ctx)) return 1;
    // After the drop: a new anchor file is the user's, as serve's own sweeper appends to it too.
    if (auto r = escrow::attach_audit_anchor((*store)->escrow(), config::in_data_dir(cfg, escrow::kAuditAnchorFile));
        !r) {
        spdlog::critical("escrow: cannot open the audit anchor in {}: {}", cfg.server.data_dir.string(),
                         r.error().message());
        return 1;
    }

    // This process's counters are in serve's shared table (common/metrics.hpp).
    boost::asio::signal_set signals(io, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec) return;
        server->stop();
        io.stop();
    });
    // SIGHUP (forwarded by serve after it validated the file): a new certificate for new
    // connections; the portal's other settings are restart-only (config/reload.hpp).
    config::Config running = cfg;
    boost::asio::signal_set hup(io, SIGHUP);
    std::function<void(const boost::system::error_code&, int)> on_hup = [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        if (reload_child_config(running, ctx.name)) {
            if (auto next = reload_tls(portal_cert_files(running), ctx.name, ctx.user)) server->set_tls(next);
            spdlog::info("escrow portal: reloaded");
        }
        tell_parent(wake_fd, kReloadedByte);
        hup.async_wait(on_hup);
    };
    hup.async_wait(on_hup);
    tell_parent(wake_fd, kReadyByte);
    common::unblock_stop_signals();  // blocked by serve: a SIGTERM before this line waited
    run_io(io);
    pool.join();
    (*store)->close();
    spdlog::info("escrow portal stopped");
    return 0;
}

}  // namespace mailward::cli
