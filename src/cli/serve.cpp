// `mailward serve [-c FILE]`: the root that composes. Forks the key holder (the one process that
// reads the master key, escrow/keyholder.hpp), prepares data_dir (certificate made on first start
// with 0600), opens the store, builds the parts from the config and wires them: the submission
// listeners, delivery (with the prober, MTA-STS and the preload list), the escrow sweeper (sealer
// and lifecycle sweep) and the recipients' portal; then, started as root, drops to [server] user
// before it serves. Runs until SIGINT/SIGTERM, or until the key holder dies (exit 1).
// The logic lives in the parts' own libraries; this file holds none.
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <thread>

#include "cli/cli.hpp"
#include "common/fsutil.hpp"
#include "common/log.hpp"
#include "common/metrics_file.hpp"
#include "common/privilege.hpp"
#include "delivery/engine.hpp"
#include "dns/resolver.hpp"
#include "escrow/anchor.hpp"
#include "escrow/keyholder.hpp"
#include "escrow/keys.hpp"
#include "escrow/service.hpp"
#include "escrow/sweeper.hpp"
#include "policy/mta_sts_cache_file.hpp"
#include "policy/mta_sts_fetch.hpp"
#include "portal/app.hpp"
#include "portal/web_server.hpp"
#include "probe/probe.hpp"
#include "server/server.hpp"
#include "store/escrow_reader.hpp"
#include "store/store.hpp"
#include "tls/certs.hpp"
#include "tls/client.hpp"
#include "tls/server_context.hpp"

namespace mailward::cli {
namespace {

// Started as root: the user serve becomes ([server] user). Otherwise nullopt, said in one line.
std::optional<common::SystemUser> unprivileged_user(const config::Config& cfg) {
    if (::geteuid() != 0) {
        spdlog::info(
            "not started as root (uid {}): running as this user, [server] user is not used",
            ::geteuid());
        return std::nullopt;
    }
    auto u = common::find_user(cfg.server.user);
    if (!u) {
        if (u.error() == common::Errc::not_found)
            throw Failure(
                "server.user: no system user \"" + cfg.server.user +
                    "\" (create it: useradd --system --no-create-home --shell /usr/sbin/nologin " +
                    cfg.server.user + ")",
                1);
        if (u.error() == common::Errc::invalid_argument)
            throw Failure("server.user: \"" + cfg.server.user +
                              "\" has uid 0; it must be an unprivileged user",
                          1);
        throw Failure(
            "server.user: cannot look up \"" + cfg.server.user + "\": " + u.error().message(), 1);
    }
    return *u;
}

// The key holder's exit, for the log: "exit status N" or "signal N".
std::string exit_text(int status) {
    if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
    return "status " + std::to_string(status);
}

void run_serve(const Options& opts) {
    config::Config cfg = load_config(opts);
    common::init_logging(cfg.server.log_level);
    // Before any thread or child exists, so all of them inherit it.
    if (auto r = common::forbid_new_privileges(); !r)
        throw Failure("cannot set no_new_privs: " + r.error().message());
    const auto user = unprivileged_user(cfg);
    if (auto r = common::make_dirs(cfg.server.data_dir, 0700); !r) {
        throw Failure(cfg.server.data_dir.string() + ": cannot create data directory: " + r.error().message());
    }
    ::chmod(cfg.server.data_dir.c_str(), 0700);

    // The key holder, forked while this process has one thread: it alone reads the master key
    // (creating it 0600 on first start) and answers over a socketpair (docs/design.md).
    const auto master_key_path = config::in_data_dir(cfg, cfg.escrow.master_key_file.empty()
                                                              ? std::filesystem::path("master.key")
                                                              : cfg.escrow.master_key_file);
    escrow::KeyHolderSettings khs;
    khs.master_key_file = master_key_path;
    khs.drop_to = user;
    khs.open_reader = [cfg] { return store::open_escrow_reader(cfg); };
    auto key_holder = escrow::spawn_key_holder(khs);
    if (!key_holder) throw Failure("cannot start the key holder: " + key_holder.error().message());
    const pid_t key_holder_pid = key_holder->pid;
    auto master_key = escrow::RemoteKeyHolder::connect(key_holder->fd, std::chrono::seconds(60));
    if (!master_key) {
        int status = 0;
        ::kill(key_holder_pid, SIGKILL);
        ::waitpid(key_holder_pid, &status, 0);
        throw Failure(master_key.error().message, 1);
    }

    auto cert = cfg.submission.cert;
    auto key = cfg.submission.key;
    if (cert.empty()) {
        cert = cfg.server.data_dir / "tls" / "submission.crt";
        key = cfg.server.data_dir / "tls" / "submission.key";
        (void)common::make_dirs(cert.parent_path(), 0700);
        auto made = tls::ensure_self_signed(cert, key, cfg.server.hostname);
        if (!made) throw Failure(cert.string() + ": cannot create self-signed certificate: " + made.error().message());
        if (*made) spdlog::info("created self-signed certificate {} for {} (0600)", cert.string(), cfg.server.hostname);
    }

    std::string tls_error;
    auto tls_ctx = tls::make_server_context(cert, key, tls_error);
    if (!tls_ctx) throw Failure(tls_error);
    // The portal's certificate: [escrow] cert/key, else the submission listener's.
    auto portal_tls = cfg.escrow.cert.empty() ? tls_ctx
                                              : tls::make_server_context(cfg.escrow.cert, cfg.escrow.key, tls_error);
    if (!portal_tls) throw Failure("escrow: " + tls_error);

    auto store = store::open(cfg);
    if (!store) throw Failure("cannot open the store in " + cfg.server.data_dir.string() + ": " + store.error().message());

    std::string client_error;
    auto client_tls = tls::make_client_context(cfg.delivery.ca_file, client_error);
    if (!client_tls) throw Failure(client_error);

    boost::asio::io_context io;
    std::string dns_error;
    auto resolver = dns::make_unbound_resolver(io, cfg.dns, dns_error);
    if (!resolver) throw Failure("DNS: " + dns_error);

    // MTA-STS fetches (blocking libcurl calls) run on their own small pool.
    boost::asio::thread_pool sts_pool(2);
    policy::MtaStsFetchOptions sts_options;
    sts_options.ca_file = cfg.delivery.ca_file;
    sts_options.port = cfg.policy.mta_sts_port;
    policy::CurlMtaStsFetcher sts_fetcher(**resolver, sts_pool, sts_options);
    // Fetched policies survive restarts (RFC 8461 section 5.1) in data_dir/mta-sts-cache.json.
    policy::MtaStsCacheFile sts_file(cfg.server.data_dir / "mta-sts-cache.json");
    policy::MtaStsCache sts_cache(**resolver, sts_fetcher, &sts_file);
    delivery::Engine engine(io, cfg, **store, **resolver, *client_tls);
    if (cfg.policy.mta_sts) engine.set_mta_sts(&sts_cache);
    if (!cfg.policy.preload_file.empty()) {
        std::string preload_error;
        auto preload = policy::load_preload(config::in_data_dir(cfg, cfg.policy.preload_file), preload_error);
        if (!preload) throw Failure("policy.preload_file: " + preload_error);
        if (preload->expired(std::chrono::system_clock::now())) {
            spdlog::warn("policy: the preload list {} has expired; it is ignored", preload->source);
        }
        spdlog::info("policy: preload list {}: {} domains", preload->source, preload->domains.size());
        engine.set_preload(std::move(*preload));
    }
    probe::ProbeOptions po;
    po.port = cfg.delivery.port;
    po.helo_name = cfg.server.hostname;
    po.dane = cfg.policy.dane;
    po.timeouts.connect = cfg.delivery.connect_timeout;
    po.timeouts.greeting = po.timeouts.command = std::chrono::seconds(60);
    engine.set_probe_options(po);
    server::SubmissionServer submission(cfg, **store, *tls_ctx);
    submission.set_on_queued([&engine] { engine.kick(); });
    std::string error;
    if (auto r = submission.start(io, error); !r) throw Failure(error);
    engine.start();

    // Escrow: the sealer (recipients awaiting escrow -> sealed + notice, every second), the
    // lifecycle sweep (expiry, purge: every minute) and the portal, all blocking work on one pool.
    boost::asio::thread_pool escrow_pool(2);
    escrow::ServiceSettings es;
    es.portal_url = cfg.escrow.url;
    es.hostname = cfg.server.hostname;
    es.expiry = std::chrono::duration_cast<std::chrono::seconds>(cfg.escrow.expiry);
    es.max_reply_bytes = cfg.portal.max_reply_size;
    es.reply_limits.per_message = cfg.portal.replies_per_message;
    es.reply_limits.per_session = cfg.portal.replies_per_session;
    es.reply_limits.window = std::chrono::ceil<std::chrono::seconds>(cfg.portal.reply_window);
    es.reply_limits.total_bytes = cfg.portal.max_replies_size;
    es.code_rules = escrow_code_rules(cfg);
    if (auto r = escrow::attach_audit_anchor((*store)->escrow(), config::in_data_dir(cfg, escrow::kAuditAnchorFile)); !r)
        throw Failure("escrow: cannot open the audit anchor in " + cfg.server.data_dir.string() + ": " +
                      r.error().message());
    escrow::EscrowService escrow_service(**store, **master_key, es);
    escrow_service.set_on_queued([&engine] { engine.kick(); });
    escrow::Sweeper escrow_sweeper(escrow_service, escrow_pool);
    escrow_sweeper.start(io.get_executor());
    portal::PortalSettings ps{portal::origin_of(cfg.escrow.url), cfg.portal.max_form_size, cfg.portal.max_reply_size};
    if (ps.origin.empty()) throw Failure("escrow.url: not an https:// URL: " + cfg.escrow.url);
    portal::Portal portal_app(escrow_service, escrow_pool, ps);
    portal::HttpLimits hl;
    hl.max_body_bytes = portal::max_body_size(ps);
    hl.header_timeout = std::chrono::ceil<std::chrono::milliseconds>(cfg.portal.header_timeout);
    hl.body_timeout = std::chrono::ceil<std::chrono::milliseconds>(cfg.portal.body_timeout);
    hl.connections.total = cfg.portal.max_connections;
    hl.connections.per_address = cfg.portal.max_connections_per_address;
    auto portal_server = portal::HttpsServer::start(
        io, cfg.escrow.listen, *portal_tls,
        [&portal_app](portal::HttpRequest req, portal::Respond respond) {
            portal_app.handle(std::move(req), std::move(respond));
        },
        [&portal_app](portal::HttpRequest req, portal::Admit admit) { portal_app.admit(std::move(req), std::move(admit)); },
        hl, error);
    if (!portal_server) throw Failure("escrow portal: " + error);
    spdlog::info("escrow portal on {} ({})", cfg.escrow.listen, cfg.escrow.url);

    // Counters for scrapers (docs/operations.md): data_dir/metrics.prom, every 5 s and at exit.
    common::metrics::FileWriter metrics_file(io, cfg.server.data_dir / "metrics.prom");
    metrics_file.start();

    auto shutdown = [&] {
        submission.stop();
        (*portal_server)->stop();
        escrow_sweeper.stop();
        engine.stop();
        sts_pool.stop();
        metrics_file.stop();
        io.stop();
    };
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        spdlog::info("signal {}: shutting down", sig);
        shutdown();
    });
    // The key holder dying ends serve with exit status 1 (a supervisor restarts both).
    bool key_holder_lost = false;
    boost::asio::signal_set children(io, SIGCHLD);
    std::function<void(const boost::system::error_code&, int)> on_child;
    on_child = [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        int status = 0;
        if (::waitpid(key_holder_pid, &status, WNOHANG) == key_holder_pid) {
            spdlog::error("escrow: the key holder (pid {}) ended ({}); stopping", key_holder_pid,
                          exit_text(status));
            key_holder_lost = true;
            shutdown();
            return;
        }
        children.async_wait(on_child);
    };
    children.async_wait(on_child);

    // Listeners are bound and keys read: from here on this process runs as [server] user.
    if (user) {
        if (auto r = common::chown_tree(cfg.server.data_dir, *user, {master_key_path}); !r)
            throw Failure(cfg.server.data_dir.string() + ": cannot hand data_dir to user " +
                          user->name + ": " + r.error().message());
        if (auto r = common::drop_privileges(*user); !r)
            throw Failure("cannot switch to user " + user->name + ": " + r.error().message());
        spdlog::info("running as user {} (uid {}, gid {}); the key holder is pid {}", user->name,
                     user->uid, user->gid, key_holder_pid);
    }
    spdlog::info("mailward serving as {} (data in {})", cfg.server.hostname, cfg.server.data_dir.string());

    const unsigned n = std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::thread> threads;
    for (unsigned i = 1; i < n; ++i) threads.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : threads) t.join();
    escrow_pool.join();
    (*store)->close();
    metrics_file.write();
    master_key->reset();  // closes the socket: the key holder exits
    if (!key_holder_lost) {
        int status = 0;
        ::waitpid(key_holder_pid, &status, 0);
    }
    if (key_holder_lost) throw Failure("the key holder ended; stopped", 1);
    spdlog::info("stopped");
}

}  // namespace

void add_serve(CLI::App& app, Options& opts) {
    auto* cmd = app.add_subcommand("serve", "run the relay (submission, delivery, portal)");
    add_common(cmd, opts, false);
    cmd->callback([&opts] { run_serve(opts); });
}

}  // namespace mailward::cli
