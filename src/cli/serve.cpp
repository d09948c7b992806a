// `mailward serve [-c FILE]`: the root that composes (docs/design.md, "Process model"). Prepares
// data_dir (certificate made on first start with 0600), migrates the store, then forks: the key
// holder (mailward-keys, the one process that reads the master key), the portal process
// (mailward-portal, serve_portal.cpp) and the submission process (mailward-smtp, serve_smtp.cpp),
// each with its own store role and listeners. This process keeps delivery (with the prober,
// MTA-STS and the preload list) and the escrow sweeper (sealer and lifecycle sweep), woken by the
// children's wake pipes. Started as root, every process drops to [server] user before it serves.
// Lifecycle (docs/operations.md "Reload and shutdown"): sd_notify READY=1 once both children
// listen; SIGHUP validates the file and reloads it here (delivery, static policy, preload list)
// and in the children (certificates, submission limits); SIGINT/SIGTERM drain (no new mail,
// deliveries in flight get [server] shutdown_timeout, leases released, exit 0), a second one stops
// at once. A child that dies ends serve (exit 1, one line naming it). The logic lives in the
// parts' own libraries.
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <thread>

#include "cli/cli.hpp"
#include "cli/serve_internal.hpp"
#include "cli/serve_metrics.hpp"
#include "common/fsutil.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/metrics_file.hpp"
#include "common/privilege.hpp"
#include "common/process.hpp"
#include "common/sd_notify.hpp"
#include "config/reload.hpp"
#include "delivery/engine.hpp"
#include "dkim/dkim.hpp"
#include "dns/resolver.hpp"
#include "escrow/anchor.hpp"
#include "escrow/keyholder.hpp"
#include "escrow/keys.hpp"
#include "escrow/service.hpp"
#include "escrow/sweeper.hpp"
#include "policy/mta_sts_fetch.hpp"
#include "policy/mta_sts_store.hpp"
#include "portal/app.hpp"
#include "probe/probe.hpp"
#include "store/escrow_reader.hpp"
#include "store/store.hpp"
#include "tls/certs.hpp"
#include "tls/client.hpp"
#include "tls/server_context.hpp"
#include "tlsrpt/send.hpp"

namespace mailward::cli {
namespace {

// Started as root: the user serve becomes ([server] user). Otherwise nullopt, said in one line.
std::optional<common::SystemUser> unprivileged_user(const config::Config& cfg) {
    if (::geteuid() != 0) {
        spdlog::info("not started as root (uid {}): running as this user, [server] user is not used", ::geteuid());
        return std::nullopt;
    }
    auto u = common::find_user(cfg.server.user);
    if (!u) {
        if (u.error() == common::Errc::not_found)
            throw Failure("server.user: no system user \"" + cfg.server.user +
                              "\" (create it: useradd --system --no-create-home --shell /usr/sbin/nologin " +
                              cfg.server.user + ")",
                          1);
        if (u.error() == common::Errc::invalid_argument)
            throw Failure("server.user: \"" + cfg.server.user + "\" has uid 0; it must be an unprivileged user", 1);
        throw Failure("server.user: cannot look up \"" + cfg.server.user + "\": " + u.error().message(), 1);
    }
    return *u;
}

// A child of serve: its name for the log, its pid, whether it has been reaped.
struct Child {
    std::string what;  // "the key holder", "the portal process", "the submission process"
    std::string name;  // mailward-keys, mailward-portal, mailward-smtp
    pid_t pid = -1;
    bool reaped = false;
};

// Reads a child's wake pipe on io: every byte (or burst of bytes) kicks the delivery engine; the
// child's kReadyByte and kReloadedByte go to on_signal. Ends at EOF (the child is gone: SIGCHLD
// says so).
class WakeReader {
  public:
    WakeReader(boost::asio::io_context& io, int fd, std::function<void()> on_wake)
        : sd_(io, fd), on_wake_(std::move(on_wake)) {}
    void on_signal(std::function<void(char)> f) { on_signal_ = std::move(f); }
    void start() {
        sd_.async_read_some(boost::asio::buffer(buf_), [this](const boost::system::error_code& ec, std::size_t n) {
            if (ec) return;
            bool wake = false;
            for (std::size_t i = 0; i < n; ++i) {
                if ((buf_[i] == kReadyByte || buf_[i] == kReloadedByte) && on_signal_) {
                    on_signal_(buf_[i]);
                } else {
                    wake = true;
                }
            }
            if (wake) on_wake_();
            start();
        });
    }
    void stop() {
        boost::system::error_code ignored;
        sd_.close(ignored);
    }

  private:
    boost::asio::posix::stream_descriptor sd_;
    std::array<char, 64> buf_{};
    std::function<void()> on_wake_;
    std::function<void(char)> on_signal_;
};

// The submission listeners' TLS context ([submission] cert/key, else a self-signed certificate
// made in data_dir/tls on first start) and the portal's ([escrow] cert/key, else the same).
struct ServerTls {
    std::shared_ptr<boost::asio::ssl::context> submission;
    std::shared_ptr<boost::asio::ssl::context> portal;
};

ServerTls make_server_tls(const config::Config& cfg) {
    const auto [cert, key] = submission_cert_files(cfg);
    if (cfg.submission.cert.empty()) {
        (void)common::make_dirs(cert.parent_path(), 0700);
        auto made = tls::ensure_self_signed(cert, key, cfg.server.hostname);
        if (!made) throw Failure(cert.string() + ": cannot create self-signed certificate: " + made.error().message());
        if (*made) spdlog::info("created self-signed certificate {} for {} (0600)", cert.string(), cfg.server.hostname);
    }

    std::string tls_error;
    auto tls_ctx = tls::make_server_context(cert, key, tls_error);
    if (!tls_ctx) throw Failure(tls_error);
    // The portal's certificate: [escrow] cert/key, else the submission listener's.
    auto portal_tls =
        cfg.escrow.cert.empty() ? tls_ctx : tls::make_server_context(cfg.escrow.cert, cfg.escrow.key, tls_error);
    if (!portal_tls) throw Failure("escrow: " + tls_error);
    if (portal::origin_of(cfg.escrow.url).empty()) throw Failure("escrow.url: not an https:// URL: " + cfg.escrow.url);
    return {*tls_ctx, *portal_tls};
}

// The schema is created and migrated here, before any other process opens the store (they open
// it with their roles, which may not change the schema), and closed again so that this process
// has one thread when it forks; then data_dir goes to [server] user (all but the master key).
void prepare_data_dir(const config::Config& cfg, const std::optional<common::SystemUser>& user,
                      const std::filesystem::path& master_key_path) {
    {
        auto migrated = store::open(cfg);
        if (!migrated)
            throw Failure("cannot open the store in " + cfg.server.data_dir.string() + ": " +
                          migrated.error().message());
        (*migrated)->close();
    }
    // data_dir goes to [server] user before the children open anything in it.
    if (user) {
        if (auto r = common::chown_tree(cfg.server.data_dir, *user, {master_key_path}); !r)
            throw Failure(cfg.server.data_dir.string() + ": cannot hand data_dir to user " + user->name + ": " +
                          r.error().message());
    }
}

// Learning and the preload list: the probe options the engine builds its prober from, and the
// preload list ([policy] preload_file) when one is configured.
// The preload list of cfg (nullopt when none is configured); false with error when it cannot be loaded.
bool read_preload(const config::Config& cfg, std::optional<policy::PreloadList>& out, std::string& error) {
    out.reset();
    if (cfg.policy.preload_file.empty()) return true;
    std::string preload_error;
    auto preload = policy::load_preload(config::in_data_dir(cfg, cfg.policy.preload_file), preload_error);
    if (!preload) {
        error = "policy.preload_file: " + preload_error;
        return false;
    }
    if (preload->expired(std::chrono::system_clock::now())) {
        spdlog::warn("policy: the preload list {} has expired; it is ignored", preload->source);
    }
    spdlog::info("policy: preload list {}: {} domains", preload->source, preload->domains.size());
    out = std::move(*preload);
    return true;
}

// The AUTH passwords of [[delivery.routes]] by route name: the first line of each route's
// auth_password_file. Read here, in serve's parent only, after the children were forked (their
// memory never holds them) and before privileges are dropped (the files may be root's, 0600).
std::map<std::string, std::string> read_route_passwords(const config::Config& cfg, std::string& error) {
    std::map<std::string, std::string> out;
    for (const auto& r : cfg.delivery.routes) {
        if (r.auth_password_file.empty()) continue;
        auto text = common::read_file(r.auth_password_file);
        if (!text) {
            error = "route " + r.name + ": cannot read auth_password_file " + r.auth_password_file.string() + ": " +
                    text.error().message();
            return {};
        }
        std::string pw = text->substr(0, text->find('\n'));
        if (!pw.empty() && pw.back() == '\r') pw.pop_back();
        if (pw.empty()) {
            error = "route " + r.name + ": auth_password_file " + r.auth_password_file.string() + " is empty";
            return {};
        }
        out[r.name] = std::move(pw);
    }
    return out;
}

void configure_learning(delivery::Engine& engine, const config::Config& cfg) {
    std::optional<policy::PreloadList> preload;
    std::string preload_error;
    if (!read_preload(cfg, preload, preload_error)) throw Failure(preload_error);
    if (preload) engine.set_preload(std::move(*preload));
    probe::ProbeOptions po;
    po.port = cfg.delivery.port;
    po.helo_name = cfg.server.hostname;
    po.dane = cfg.policy.dane;
    po.timeouts.connect = cfg.delivery.connect_timeout;
    po.timeouts.greeting = po.timeouts.command = std::chrono::seconds(60);
    engine.set_probe_options(po);
}

// Every connection is a descriptor, in the submission or the portal process: the soft open-files
// limit goes up to what the larger max_connections needs (at least 65536; the hard limit caps it).
// Children inherit it. Too low a hard limit is said in the log, not fatal.
void raise_open_files_limit(const config::Config& cfg) {
    constexpr unsigned long kSpare = 256;  // listeners, the store, logs, pipes, DNS sockets
    const unsigned long need = std::max(cfg.submission.max_connections, cfg.portal.max_connections) + kSpare;
    const auto lim = common::raise_fd_limit(std::max(need, 65536UL));
    if (lim.after != lim.before) spdlog::debug("open files limit raised from {} to {}", lim.before, lim.after);
    if (lim.after < need)
        spdlog::warn(
            "the open files limit is {} (hard limit {}): too low for max_connections; each process "
            "needs about {} (raise LimitNOFILE)",
            lim.after, lim.hard, need);
}

void run_serve(const Options& opts) {
    const auto started = std::chrono::steady_clock::now();
    config::Config cfg = load_config(opts);
    common::init_logging(cfg.server.log_level);
    common::metrics::share_with_children();  // before any fork: every process counts into one table
    // Before any thread or child exists, so all of them inherit these.
    common::tune_allocator();
    raise_open_files_limit(cfg);
    if (auto r = common::forbid_new_privileges(); !r) throw Failure("cannot set no_new_privs: " + r.error().message());
    const auto user = unprivileged_user(cfg);
    // A SIGTERM or SIGHUP while starting waits for the handlers below (here and in every child,
    // which inherit the mask) instead of killing this process.
    common::block_stop_signals();
    if (auto r = common::make_dirs(cfg.server.data_dir, 0700); !r) {
        throw Failure(cfg.server.data_dir.string() + ": cannot create data directory: " + r.error().message());
    }
    ::chmod(cfg.server.data_dir.c_str(), 0700);

    // The key holder, forked while this process has one thread: it alone reads the master key
    // (creating it 0600 on first start) and answers over socketpairs (docs/design.md): this
    // process's, and the portal process's own (extra[0]).
    const auto master_key_path = config::in_data_dir(
        cfg, cfg.escrow.master_key_file.empty() ? std::filesystem::path("master.key") : cfg.escrow.master_key_file);
    escrow::KeyHolderSettings khs;
    khs.master_key_file = master_key_path;
    khs.drop_to = user;
    khs.open_reader = [cfg] { return store::open_escrow_reader(cfg); };
    khs.extra_clients = 1;
    auto key_holder = escrow::spawn_key_holder(khs);
    if (!key_holder) throw Failure("cannot start the key holder: " + key_holder.error().message());
    Child keys_child{"the key holder", "mailward-keys", key_holder->pid};
    const int portal_key_fd = key_holder->extra.at(0);
    auto master_key = escrow::RemoteKeyHolder::connect(key_holder->fd, std::chrono::seconds(60));
    if (!master_key) {
        ::kill(keys_child.pid, SIGKILL);
        ::waitpid(keys_child.pid, nullptr, 0);
        throw Failure(master_key.error().message, 1);
    }

    const auto server_tls = make_server_tls(cfg);

    prepare_data_dir(cfg, user, master_key_path);

    // The portal and submission processes: each binds its own listeners, then drops.
    auto portal_wake = common::make_wake_pipe();
    auto smtp_wake = common::make_wake_pipe();
    if (!portal_wake || !smtp_wake) throw Failure("cannot create the wake pipes");
    const int parent_key_fd = key_holder->fd;
    auto portal_pid = common::fork_child(kPortalProcess, [&]() -> int {
        ::close(parent_key_fd);
        ::close(portal_wake->read_fd);
        ::close(smtp_wake->read_fd);
        ::close(smtp_wake->write_fd);
        return run_portal_process(ChildContext{cfg, user, portal_wake->write_fd, kPortalProcess}, server_tls.portal,
                                  portal_key_fd);
    });
    ::close(portal_key_fd);  // the portal's alone
    ::close(portal_wake->write_fd);
    if (!portal_pid) throw Failure("cannot start the portal process: " + portal_pid.error().message());
    Child portal_child{"the portal process", kPortalProcess, *portal_pid};
    auto smtp_pid = common::fork_child(kSubmissionProcess, [&]() -> int {
        ::close(parent_key_fd);
        ::close(portal_wake->read_fd);
        ::close(smtp_wake->read_fd);
        return run_submission_process(ChildContext{cfg, user, smtp_wake->write_fd, kSubmissionProcess},
                                      server_tls.submission);
    });
    ::close(smtp_wake->write_fd);
    if (!smtp_pid) {
        ::kill(portal_child.pid, SIGTERM);
        (void)common::wait_child(portal_child.pid, std::chrono::seconds(10));
        throw Failure("cannot start the submission process: " + smtp_pid.error().message());
    }
    Child smtp_child{"the submission process", kSubmissionProcess, *smtp_pid};
    std::array<Child*, 3> children{&keys_child, &portal_child, &smtp_child};

    std::string route_error;
    auto route_passwords = read_route_passwords(cfg, route_error);
    if (!route_error.empty()) {
        for (auto* c : {&portal_child, &smtp_child}) ::kill(c->pid, SIGKILL);
        throw Failure(route_error);
    }
    // DKIM keys ([[dkim]]): read after the forks, so no child holds a copy, and before the drop, so
    // the files may be root's 0600; only this process signs (docs/design.md "DKIM").
    std::string dkim_error;
    auto dkim_signer = dkim::Signer::load(cfg.dkim, dkim_error);
    if (!dkim_signer) {
        for (auto* c : {&portal_child, &smtp_child}) ::kill(c->pid, SIGKILL);
        throw Failure("dkim: " + dkim_error);
    }

    // The children bind the listeners: this process needs root no longer (data_dir is the user's
    // already), and from here on it may have threads: delivery and escrow sealing.
    if (user) {
        if (auto r = common::drop_privileges(*user); !r) {
            for (auto* c : {&portal_child, &smtp_child}) ::kill(c->pid, SIGKILL);
            throw Failure("cannot switch to user " + user->name + ": " + r.error().message());
        }
        spdlog::info("running as user {} (uid {}, gid {}); the key holder is pid {}", user->name, user->uid, user->gid,
                     keys_child.pid);
    }
    auto store = store::open(cfg);
    if (!store)
        throw Failure("cannot open the store in " + cfg.server.data_dir.string() + ": " + store.error().message());

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
    // Fetched policies survive restarts (RFC 8461 section 5.1) and are shared by every node on the
    // store; the file of earlier builds is imported once. Expired rows go at start.
    policy::MtaStsStore sts_store((*store)->policy());
    policy::import_mta_sts_file(cfg.server.data_dir / "mta-sts-cache.json", sts_store);
    if (auto n = (*store)->policy().purge_mta_sts(std::chrono::system_clock::now()); !n)
        spdlog::warn("mta-sts: cannot remove expired policies from the store: {}", n.error().message());
    policy::MtaStsCache sts_cache(**resolver, sts_fetcher, &sts_store, &sts_pool);
    // TLS-RPT (RFC 8460, [tlsrpt] enabled): the engine hands each session's TLS outcome to a
    // recorder that writes the store's daily counts on this pool (declared first: it outlives the engine).
    boost::asio::thread_pool tlsrpt_pool(1);
    delivery::Engine engine(io, cfg, **store, **resolver, *client_tls);
    if (cfg.tlsrpt.enabled) engine.set_tlsrpt(delivery::store_recorder((*store)->policy(), tlsrpt_pool));
    engine.set_mta_sts(&sts_cache);  // used while [policy] mta_sts is on (it may change on reload)
    engine.set_route_passwords(std::move(route_passwords));
    if (!dkim_signer->empty()) {
        for (const auto& d : cfg.dkim)
            spdlog::info("dkim: signing mail from {} with selector {} ({}{})", d.domain, d.selector, d.algorithm,
                         d.sign_relayed ? "" : ", own mail only");
        engine.set_dkim(std::make_shared<const dkim::Signer>(std::move(*dkim_signer)));
    }
    configure_learning(engine, cfg);
    // What the children queue is delivered at once: a byte on a wake pipe kicks the engine (its
    // own polling stays the guarantee).
    WakeReader smtp_wakes(io, smtp_wake->read_fd, [&engine] { engine.kick(); });
    WakeReader portal_wakes(io, portal_wake->read_fd, [&engine] { engine.kick(); });
    smtp_wakes.start();
    portal_wakes.start();
    engine.start();
    // Work queued through another node (PostgreSQL NOTIFY) kicks it too; the guard stops the
    // store's listener before the engine goes, whichever way this function ends.
    (*store)->set_work_hint([&engine] { engine.kick(); });
    struct HintGuard {
        store::Store& s;
        ~HintGuard() { s.set_work_hint(nullptr); }
    } hint_guard{**store};

    // Escrow: the sealer (recipients awaiting escrow -> sealed + notice, every second) and the
    // lifecycle sweep (expiry, purge: every minute), blocking work on one pool. The portal is its
    // own process.
    boost::asio::thread_pool escrow_pool(2);
    if (auto r = escrow::attach_audit_anchor((*store)->escrow(), config::in_data_dir(cfg, escrow::kAuditAnchorFile));
        !r)
        throw Failure("escrow: cannot open the audit anchor in " + cfg.server.data_dir.string() + ": " +
                      r.error().message());
    escrow::EscrowService escrow_service(**store, **master_key, escrow_service_settings(cfg));
    escrow_service.set_on_queued([&engine] { engine.kick(); });
    escrow::Sweeper escrow_sweeper(escrow_service, escrow_pool);
    escrow_sweeper.start(io.get_executor());
    // TLS-RPT: the previous UTC day's reports, once a day at [tlsrpt] send_hour (tlsrpt/send.hpp).
    std::optional<tlsrpt::DailySender> tlsrpt_sender;
    if (cfg.tlsrpt.enabled) {
        tlsrpt_sender.emplace(**store, **resolver, tlsrpt_pool, tlsrpt::send_options(cfg), cfg.tlsrpt.send_hour);
        tlsrpt_sender->start(io.get_executor());
        spdlog::info("tlsrpt: recording TLS sessions; reports of the previous day go out after {:02}:00 UTC",
                     cfg.tlsrpt.send_hour);
    }

    // Counters for scrapers (docs/operations.md): data_dir/metrics.prom, every 5 s and at exit.
    common::metrics::FileWriter metrics_file(io, cfg.server.data_dir / "metrics.prom");
    metrics_file.start();
    add_queue_gauges(**store);
    auto metrics_endpoint = start_metrics_endpoint(io, cfg);  // [metrics] listen

    // The state of the lifecycle, all on io (its handlers; io runs on several threads, so they
    // share one strand).
    auto lifecycle = boost::asio::make_strand(io);
    bool stopping = false;  // a drain or a stop began: children ending is expected
    bool stopped = false;   // io is being stopped
    const auto bound = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.server.shutdown_timeout);
    const std::string where = "submission on " + [&] {
        std::string l;
        for (const auto& ep : cfg.submission.listen) l += (l.empty() ? "" : ", ") + ep.to_string();
        for (const auto& ep : cfg.submission.tls_listen) l += (l.empty() ? "" : ", ") + ep.to_string() + " (TLS)";
        return l;
    }() + ", portal on " + cfg.escrow.listen;

    // Readiness: both children say they listen (kReadyByte); then READY=1.
    bool smtp_ready = false;
    bool portal_ready = false;
    bool announced = false;
    auto maybe_ready = [&] {
        if (announced || !smtp_ready || !portal_ready || stopping) return;
        announced = true;
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        spdlog::info("ready: every listener listens ({}), {} ms after the start", where, ms.count());
        common::sd::ready("serving: " + where);
    };

    // SIGHUP: validate the file, reload here, forward to the children, READY=1 when they confirmed.
    config::Config running = cfg;  // in force (restart-only keys at their start values)
    int reload_acks = 0;
    std::chrono::steady_clock::time_point reload_start{};
    boost::asio::steady_timer reload_timer(lifecycle);
    auto reload_done = [&](bool complete) {
        if (reload_acks < 0) return;
        reload_acks = -1;
        reload_timer.cancel();
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - reload_start);
        if (complete) {
            spdlog::info("reload: done in {} ms", ms.count());
        } else {
            spdlog::warn("reload: a child did not confirm within 10 s; going on");
        }
        if (!stopping) common::sd::ready("serving: " + where);
    };
    auto on_child_signal = [&](char byte) {
        boost::asio::post(lifecycle, [&, byte] {
            if (byte == kReadyByte) return maybe_ready();
            if (reload_acks > 0 && --reload_acks == 0) reload_done(true);
        });
    };
    auto reload = [&] {
        if (stopping) return;
        reload_start = std::chrono::steady_clock::now();
        common::sd::reloading("reloading " + running.source.string());
        config::ConfigError err;
        auto next = config::reload(running, err);
        std::optional<policy::PreloadList> preload;
        std::string preload_error;
        if (next && !read_preload(next->config, preload, preload_error)) err.message = preload_error;
        if (!next || !preload_error.empty()) {
            spdlog::error("reload refused: {}; the running configuration stays in force", err.message);
            common::sd::ready("serving: " + where + " (the last reload was refused)");
            return;
        }
        if (!next->restart.empty()) {
            std::string keys;
            for (const auto& k : next->restart) keys += (keys.empty() ? "" : ", ") + k;
            spdlog::warn("reload: changed keys that need a restart keep their running value until then: {}", keys);
        }
        std::string changed;
        for (const auto& k : next->changed) changed += (changed.empty() ? "" : ", ") + k;
        spdlog::info("reload: {} ({})", running.source.string(), changed.empty() ? "no key changed" : changed);
        running = std::move(next->config);
        set_log_level(running.server.log_level);
        engine.reload(running, std::move(preload));
        // The children read the file again themselves (certificates, limits) and confirm.
        reload_acks = 0;
        for (auto* c : {&portal_child, &smtp_child}) {
            if (!c->reaped && ::kill(c->pid, SIGHUP) == 0) ++reload_acks;
        }
        if (reload_acks == 0) return reload_done(true);
        reload_timer.expires_after(std::chrono::seconds(10));
        reload_timer.async_wait([&](const boost::system::error_code& ec) {
            if (!ec) reload_done(false);
        });
    };

    // Stopping: at once (a second signal, a child lost) or by draining (the first signal).
    // signal_children: SIGTERM them (again, after a drain began: then they stop at once too).
    auto stop_now = [&](bool signal_children) {
        if (stopped) return;
        stopped = true;
        stopping = true;
        for (auto* c : {&portal_child, &smtp_child})
            if (signal_children && !c->reaped) ::kill(c->pid, SIGTERM);
        smtp_wakes.stop();
        portal_wakes.stop();
        escrow_sweeper.stop();
        if (tlsrpt_sender) tlsrpt_sender->stop();
        engine.stop();
        sts_pool.stop();
        metrics_file.stop();
        if (metrics_endpoint) metrics_endpoint->stop();
        io.stop();
    };
    std::chrono::steady_clock::time_point drain_start{};
    auto drain = [&](int sig) {
        stopping = true;
        drain_start = std::chrono::steady_clock::now();
        spdlog::info(
            "signal {}: draining: no new mail; deliveries in flight get up to {} ms (a second signal stops at once)",
            sig, bound.count());
        common::sd::stopping("draining");
        // The children stop accepting and finish their sessions' transactions (same bound).
        for (auto* c : {&portal_child, &smtp_child})
            if (!c->reaped) ::kill(c->pid, SIGTERM);
        escrow_sweeper.stop();
        if (tlsrpt_sender) tlsrpt_sender->stop();
        engine.drain(bound, [&](std::size_t abandoned) {
            boost::asio::post(lifecycle, [&, abandoned] {
                if (abandoned > 0) {
                    spdlog::warn(
                        "delivery: {} delivery(ies) still running at the shutdown timeout ({} ms): abandoned, "
                        "their messages stay queued for the next start",
                        abandoned, bound.count());
                }
                stop_now(false);  // the children drain on their own, up to the same bound
            });
        });
    };
    boost::asio::signal_set signals(lifecycle, SIGINT, SIGTERM);
    std::function<void(const boost::system::error_code&, int)> on_stop = [&](const boost::system::error_code& ec,
                                                                             int sig) {
        if (ec) return;
        if (stopping) {
            spdlog::info("signal {}: stopping at once", sig);
            stop_now(true);
            return;
        }
        drain(sig);
        signals.async_wait(on_stop);
    };
    signals.async_wait(on_stop);
    boost::asio::signal_set hup(lifecycle, SIGHUP);
    std::function<void(const boost::system::error_code&, int)> on_hup = [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        reload();
        hup.async_wait(on_hup);
    };
    hup.async_wait(on_hup);
    smtp_wakes.on_signal([&](char b) {
        if (b == kReadyByte) boost::asio::post(lifecycle, [&] { smtp_ready = true; });
        on_child_signal(b);
    });
    portal_wakes.on_signal([&](char b) {
        if (b == kReadyByte) boost::asio::post(lifecycle, [&] { portal_ready = true; });
        on_child_signal(b);
    });

    // A child dying ends serve with exit status 1 (a supervisor restarts it all).
    const Child* lost = nullptr;
    boost::asio::signal_set sigchld(lifecycle, SIGCHLD);
    std::function<void(const boost::system::error_code&, int)> on_child;
    auto reap = [&] {
        for (auto* c : children) {
            int status = 0;
            if (c->reaped || ::waitpid(c->pid, &status, WNOHANG) != c->pid) continue;
            c->reaped = true;
            if (stopping) continue;
            spdlog::error("{} ({}, pid {}) ended ({}); stopping", c->what, c->name, c->pid, common::exit_text(status));
            lost = c;
            stop_now(true);
            return;
        }
    };
    on_child = [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        reap();
        if (!stopped) sigchld.async_wait(on_child);
    };
    sigchld.async_wait(on_child);
    boost::asio::post(lifecycle, reap);  // a child that ended before the handler was in place

    common::unblock_stop_signals();
    spdlog::info("mailward serving as {} (data in {}); processes: {} pid {}, {} pid {}, {} pid {}", cfg.server.hostname,
                 cfg.server.data_dir.string(), keys_child.name, keys_child.pid, portal_child.name, portal_child.pid,
                 smtp_child.name, smtp_child.pid);

    run_io(io);
    escrow_pool.join();
    tlsrpt_pool.join();
    // The children next (SIGTERM was sent; the submission process drains up to the same bound):
    // the portal's key-holder connection closes with it.
    for (auto* c : {&smtp_child, &portal_child}) {
        if (c->reaped) continue;
        const int status = common::wait_child(c->pid, bound + std::chrono::seconds(10));
        c->reaped = true;
        spdlog::debug("{} (pid {}) stopped ({})", c->name, c->pid, common::exit_text(status));
    }
    // Leases of deliveries abandoned at the bound: released now, so that the next start (or
    // another instance) takes the messages at once.
    if (auto n = (*store)->queue().release_leases(config::node_name(cfg)); n && *n > 0)
        spdlog::info("delivery: released {} lease(s) of abandoned deliveries", *n);
    common::metrics::set_collector({});  // the queue gauges read the store
    (*store)->close();
    metrics_file.write();
    master_key->reset();  // closes the socket: the key holder exits
    if (!keys_child.reaped) (void)common::wait_child(keys_child.pid, std::chrono::seconds(20));
    if (lost) throw Failure(lost->what + " (" + lost->name + ") ended; stopped", 1);
    if (drain_start != std::chrono::steady_clock::time_point{}) {
        spdlog::info("stopped (drained in {} ms)", std::chrono::duration_cast<std::chrono::milliseconds>(
                                                       std::chrono::steady_clock::now() - drain_start)
                                                       .count());
    } else {
        spdlog::info("stopped");
    }
}

}  // namespace

void add_serve(CLI::App& app, Options& opts) {
    auto* cmd = app.add_subcommand("serve", "run the relay (submission, delivery, portal)");
    add_common(cmd, opts, false);
    cmd->callback([&opts] { run_serve(opts); });
}

}  // namespace mailward::cli
