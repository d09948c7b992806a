// store::open: picks the backend named by [store] backend. "sqlite" keeps mailward.db in
// server.data_dir (created 0700 when missing; relative paths are relative to the process cwd);
// "postgres" connects to [store] dsn (a database shared by several nodes). Also the names of recipient states as stored
// and shown, and the order of TLS level names (policy_store.hpp).
#include "store/store.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "config/config.hpp"
#include "store/escrow_reader.hpp"
#include "store/postgres/pg_store.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace mailward::store {
namespace {

// Creates each missing component of dir with mode 0700; existing directories are left as they are.
Result<void> make_private_dirs(const std::filesystem::path& dir) {
    std::filesystem::path p;
    for (const auto& part : dir) {
        p /= part;
        if (::mkdir(p.c_str(), 0700) == 0 || errno == EEXIST) continue;
        int err = errno;
        spdlog::error("store: cannot create directory {}: {}", p.string(), std::strerror(err));
        return error_code(err, boost::system::system_category());
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        spdlog::error("store: data_dir {} is not a directory", dir.string());
        return error_code(ENOTDIR, boost::system::system_category());
    }
    return {};
}

}  // namespace

std::string_view to_string(RcptState s) {
    switch (s) {
        case RcptState::queued: return "queued";
        case RcptState::delivered: return "delivered";
        case RcptState::failed: return "failed";
        case RcptState::awaiting_escrow: return "awaiting_escrow";
        case RcptState::escrowed: return "escrowed";
        case RcptState::deleted: return "deleted";
    }
    return "unknown";
}

bool valid_mta_sts(const StoredMtaSts& p) {
    return !p.domain.empty() && !p.id.empty() && !p.policy.empty() && p.expires > p.fetched_at;
}

bool valid_tlsrpt(const TlsRptCount& c) {
    const auto& d = c.day;
    if (d.size() != 10 || d[4] != '-' || d[7] != '-') return false;
    for (std::size_t i = 0; i < d.size(); ++i)
        if (i != 4 && i != 7 && (d[i] < '0' || d[i] > '9')) return false;
    return !c.policy_domain.empty() && !c.policy_type.empty() && c.count >= 1;
}

std::optional<int> level_rank(std::string_view name) {
    constexpr std::string_view kLadder[] = {"none", "may", "encrypt", "verify", "dane"};
    for (int i = 0; i < static_cast<int>(std::size(kLadder)); ++i)
        if (kLadder[i] == name) return i;
    return std::nullopt;
}

std::string_view to_string(Role r) {
    switch (r) {
        case Role::main: return "main";
        case Role::submission: return "submission";
        case Role::portal: return "portal";
    }
    return "unknown";
}

const std::vector<std::string_view>& writable_tables(Role r) {
    // The queue as written by submit(): the envelope, its recipients, the body inline or spooled,
    // and the spool ranges the writer reclaims (spool_free).
    static const std::vector<std::string_view> none;
    static const std::vector<std::string_view> submission = {"messages", "recipients", "bodies", "spooled_bodies",
                                                             "spool_free"};
    // The queue (replies, code mails) and the portal's own escrow rows: codes, sessions, the
    // sign-in counters of escrow_messages and the audit chain (AUTOINCREMENT: sqlite_sequence).
    // Not escrow_keys: only the sealer and the sweeper store or shred keys.
    static const std::vector<std::string_view> portal = {
        "messages",     "recipients",      "bodies",          "spooled_bodies", "spool_free",
        "escrow_codes", "escrow_sessions", "escrow_messages", "escrow_audit",   "sqlite_sequence"};
    switch (r) {
        case Role::main: return none;
        case Role::submission: return submission;
        case Role::portal: return portal;
    }
    return none;
}

Result<std::unique_ptr<Store>> open(const config::Config& cfg, Role role) {
    const auto& backend = cfg.store.backend;
    if (backend == "sqlite") {
        const auto& dir = cfg.server.data_dir;
        if (dir.empty()) {
            spdlog::error("store: server.data_dir is empty");
            return common::Errc::invalid_argument;
        }
        if (auto r = make_private_dirs(dir); !r) return r.error();
        sqlite::Options opts;
        opts.commit_interval = cfg.store.commit_interval;
        opts.role = role;
        auto s = sqlite::SqliteStore::open(dir / "mailward.db", std::move(opts));
        if (!s) return s.error();
        return std::unique_ptr<Store>(std::move(*s));
    }
    if (backend == "postgres") {
        postgres::Options opts;
        opts.commit_interval = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.store.commit_interval);
        opts.role = role;
        auto s = postgres::PgStore::open(cfg.store.dsn, std::move(opts));
        if (!s) {
            spdlog::error("store: cannot open the PostgreSQL store: {}", s.error().message());
            return s.error();
        }
        return std::unique_ptr<Store>(std::move(*s));
    }
    spdlog::error("store: unknown backend '{}'", backend);
    return common::Errc::invalid_argument;
}

Result<std::unique_ptr<EscrowReader>> open_escrow_reader(const config::Config& cfg) {
    if (cfg.store.backend == "postgres") return postgres::open_escrow_reader(cfg.store.dsn);
    if (cfg.store.backend != "sqlite") {
        spdlog::error("store: no read-only escrow view for backend '{}'", cfg.store.backend);
        return common::Errc::unsupported;
    }
    return sqlite::open_escrow_reader(cfg.server.data_dir / "mailward.db", sqlite::Options{}.busy_timeout_ms);
}

}  // namespace mailward::store
