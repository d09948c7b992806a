// The SQLite RAII layer: connection open/settings, statement cache, binding, stepping and the
// mapping of SQLite result codes to project errors. Trusts nothing it reads back beyond SQLite's
// own type rules: column accessors copy exactly column_bytes() bytes.
#include "store/sqlite/db.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <string_view>

namespace mailward::store::sqlite {
namespace {

bool is_unique_violation(int rc) { return rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY; }

error_code log_and_map(sqlite3* db, int rc, std::string_view what) {
    const char* msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if (is_unique_violation(rc)) {
        // Expected for "add user" and the like; the caller decides whether it is a problem.
        spdlog::debug("store: {}: {} ({})", what, msg, rc);
    } else {
        spdlog::error("store: {}: {} ({})", what, msg, rc);
    }
    return map_sqlite_error(rc, db ? sqlite3_system_errno(db) : 0);
}

// The first line of a statement's SQL, short, to name it in logs.
std::string describe(sqlite3_stmt* s) {
    const char* sql = s ? sqlite3_sql(s) : nullptr;
    if (!sql) return "statement";
    std::string_view v(sql);
    v = v.substr(0, v.find('\n'));
    if (v.size() > 80) v = v.substr(0, 80);
    return std::string(v);
}

}  // namespace

error_code map_sqlite_error(int rc) noexcept {
    if (is_unique_violation(rc)) return common::Errc::already_exists;
    switch (rc & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED: return common::Errc::timeout;
        case SQLITE_FULL: return common::Errc::storage_full;
        case SQLITE_IOERR:
        case SQLITE_CANTOPEN:
        case SQLITE_READONLY:
        case SQLITE_PERM: return common::Errc::io_error;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB: return common::Errc::corrupt;
        case SQLITE_TOOBIG: return common::Errc::too_large;
        default: return common::Errc::storage_error;
    }
}

error_code map_sqlite_error(int rc, int system_errno) noexcept {
    const int primary = rc & 0xff;
    if ((primary == SQLITE_IOERR || primary == SQLITE_READONLY || primary == SQLITE_CANTOPEN) &&
        (system_errno == ENOSPC || system_errno == EDQUOT || system_errno == EROFS))
        return common::Errc::storage_full;
    return map_sqlite_error(rc);
}

// ---- Stmt ----

Stmt::~Stmt() { reset(); }

void Stmt::reset() {
    if (stmt_) {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }
    bind_rc_ = SQLITE_OK;
}

Stmt& Stmt::bind(int i, std::string_view text) {
    int rc = sqlite3_bind_text64(stmt_, i, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
    return *this;
}

Stmt& Stmt::bind_blob(int i, std::string_view bytes) {
    // A zero-length blob must still be a BLOB, not NULL: give SQLite a valid pointer.
    static const char empty = 0;
    const char* p = bytes.empty() ? &empty : bytes.data();
    int rc = sqlite3_bind_blob64(stmt_, i, p, bytes.size(), SQLITE_STATIC);
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
    return *this;
}

Stmt& Stmt::bind(int i, std::int64_t v) {
    int rc = sqlite3_bind_int64(stmt_, i, v);
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
    return *this;
}

Stmt& Stmt::bind_null(int i) {
    int rc = sqlite3_bind_null(stmt_, i);
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
    return *this;
}

Result<bool> Stmt::step() {
    // result<bool> cannot be built implicitly from an error_code (it converts to bool).
    using boost::system::in_place_error;
    if (bind_rc_ != SQLITE_OK)
        return Result<bool>(in_place_error, log_and_map(db_, bind_rc_, "bind " + describe(stmt_)));
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return Result<bool>(in_place_error, log_and_map(db_, sqlite3_extended_errcode(db_), describe(stmt_)));
}

Result<void> Stmt::run() {
    auto r = step();
    if (!r) return r.error();
    return {};
}

std::int64_t Stmt::int64(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string Stmt::text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    int n = sqlite3_column_bytes(stmt_, col);  // after column_text, as the API requires
    return p ? std::string(p, static_cast<std::size_t>(n)) : std::string();
}

std::string Stmt::blob(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    int n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(p, static_cast<std::size_t>(n)) : std::string();
}

bool Stmt::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

// ---- Db ----

Db::Db(Db&& o) noexcept : db_(o.db_), path_(std::move(o.path_)), cache_(std::move(o.cache_)) {
    o.db_ = nullptr;
    o.cache_.clear();
}

Db& Db::operator=(Db&& o) noexcept {
    if (this != &o) {
        close();
        db_ = o.db_;
        path_ = std::move(o.path_);
        cache_ = std::move(o.cache_);
        o.db_ = nullptr;
        o.cache_.clear();
    }
    return *this;
}

Db::~Db() { close(); }

void Db::close() noexcept {
    for (auto& [sql, s] : cache_) sqlite3_finalize(s);
    cache_.clear();
    if (db_) {
        int rc = sqlite3_close(db_);
        if (rc != SQLITE_OK) spdlog::error("store: close {}: {} ({})", path_.string(), sqlite3_errmsg(db_), rc);
        db_ = nullptr;
    }
}

namespace {

// Waiting for another connection's write lock. Since the submission and portal processes write the
// queue beside serve's own writer, a writer regularly finds the lock held for one commit (about a
// millisecond with its fsync). SQLite's own busy handler sleeps 1, 2, 5, 10 ms... between checks,
// which turned each such wait into several commits' time; this one checks every 100 us for the
// first 10 ms, then every millisecond, until timeout_ms in all.
int busy_wait(void* timeout_ms, int count) {
    const auto limit_us = static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(timeout_ms)) * 1000;
    constexpr int kFastTries = 100;
    constexpr std::int64_t kFastUs = 100, kSlowUs = 1000;
    const std::int64_t waited_us =
        count < kFastTries ? count * kFastUs : kFastTries * kFastUs + (count - kFastTries) * kSlowUs;
    if (waited_us >= limit_us) return 0;  // give up: SQLITE_BUSY
    ::usleep(static_cast<useconds_t>(count < kFastTries ? kFastUs : kSlowUs));
    return 1;
}

}  // namespace

int set_busy_timeout(sqlite3* db, int timeout_ms) {
    if (timeout_ms <= 0) return sqlite3_busy_handler(db, nullptr, nullptr);
    return sqlite3_busy_handler(db, busy_wait, reinterpret_cast<void*>(static_cast<std::intptr_t>(timeout_ms)));
}

Result<Db> Db::open(const std::filesystem::path& path, int busy_timeout_ms) {
    Db d;
    d.path_ = path;
    // NOMUTEX: every connection is used by one thread at a time (the store's own locking).
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path.c_str(), &d.db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        auto ec = log_and_map(d.db_, rc, "open " + path.string());
        return ec;  // d's destructor closes the half-open handle
    }
    sqlite3_extended_result_codes(d.db_, 1);
    rc = set_busy_timeout(d.db_, busy_timeout_ms);
    if (rc != SQLITE_OK) return d.fail(rc, "busy_timeout");
    // secure_delete=ON: deleted content is zeroed, in the b-tree pages and in the overflow pages
    // put on the freelist (FAST left those as they were: a 4-8 KiB body's tail, or a ciphertext
    // row's, stayed readable in free pages). The cost is the freed overflow pages' writes
    // (docs/operations.md, "What is erased when").
    const char* settings = unsafe_no_fsync()
                               ? "PRAGMA foreign_keys=ON; PRAGMA synchronous=OFF; PRAGMA secure_delete=ON;"
                               : "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;";
    if (auto r = d.exec(settings, "connection settings"); !r) return r.error();
    return d;
}

bool unsafe_no_fsync() {
#ifdef NDEBUG
    return false;
#else
    static const bool on = [] {
        const char* v = std::getenv("MAILWARD_UNSAFE_NO_FSYNC");
        const bool set = v != nullptr && std::string_view(v) == "1";
        if (set)
            spdlog::warn("store: MAILWARD_UNSAFE_NO_FSYNC=1: the queue is NOT synced (a test switch; debug build)");
        return set;
    }();
    return on;
#endif
}

Result<Db> Db::open_readonly(const std::filesystem::path& path, int busy_timeout_ms) {
    Db d;
    d.path_ = path;
    int rc = sqlite3_open_v2(path.c_str(), &d.db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) return log_and_map(d.db_, rc, "open read-only " + path.string());
    sqlite3_extended_result_codes(d.db_, 1);
    rc = set_busy_timeout(d.db_, busy_timeout_ms);
    if (rc != SQLITE_OK) return d.fail(rc, "busy_timeout");
    return d;
}

namespace {

// Whether nothing can be written beside the database (a full or read-only file system): a small
// probe file tells, where SQLite's own errno is often overwritten before it can be read.
bool cannot_write_beside(const std::filesystem::path& db_path) {
    const auto probe = db_path.parent_path() / (".write-probe-" + std::to_string(::getpid()));
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int err = fd < 0 ? errno : 0;
    if (fd >= 0) {
        static const char block[4096] = {};
        if (::write(fd, block, sizeof block) != static_cast<ssize_t>(sizeof block)) err = errno;
        ::close(fd);
        ::unlink(probe.c_str());
    }
    return err == ENOSPC || err == EDQUOT || err == EROFS;
}

}  // namespace

error_code Db::fail(int rc, std::string_view what) const {
    auto ec = log_and_map(db_, rc, what);
    if (ec == common::Errc::io_error && !path_.empty() && cannot_write_beside(path_)) return common::Errc::storage_full;
    return ec;
}

Result<bool> Db::checkpoint_truncate(int wait_ms, int restore_busy_timeout_ms) {
    using boost::system::in_place_error;
    // The busy handler decides how long the checkpoint waits for readers and writers: briefly.
    set_busy_timeout(db_, wait_ms);
    int log = -1, done = -1;
    int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
    set_busy_timeout(db_, restore_busy_timeout_ms);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) return false;  // a reader or writer is in the way
    if (rc != SQLITE_OK)
        return Result<bool>(in_place_error,
                            log_and_map(db_, sqlite3_extended_errcode(db_), "wal_checkpoint(TRUNCATE)"));
    // TRUNCATE leaves an empty WAL when it copied every frame (log and done are 0 then).
    return log == done;
}

Result<void> Db::exec(const char* sql, std::string_view what) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    sqlite3_free(err);  // sqlite3_errmsg() below says the same
    if (rc != SQLITE_OK) return fail(sqlite3_extended_errcode(db_), what);
    return {};
}

Result<Stmt> Db::prepare(std::string_view sql) {
    auto it = cache_.find(std::string(sql));
    if (it == cache_.end()) {
        sqlite3_stmt* s = nullptr;
        int rc =
            sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &s, nullptr);
        if (rc != SQLITE_OK) return fail(rc, "prepare " + std::string(sql.substr(0, 80)));
        it = cache_.emplace(std::string(sql), s).first;
    }
    return Stmt(it->second, db_);
}

std::int64_t Db::changes() const { return sqlite3_changes64(db_); }

std::int64_t Db::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

bool Db::autocommit() const { return sqlite3_get_autocommit(db_) != 0; }

// ---- Tx ----

Result<Tx> Tx::begin(Db& db, bool write) {
    if (auto r = db.exec(write ? "BEGIN IMMEDIATE" : "BEGIN", "begin transaction"); !r) return r.error();
    return Tx(db);
}

Tx::~Tx() {
    if (db_ && !db_->autocommit()) (void)db_->exec("ROLLBACK", "rollback");
}

Result<void> Tx::commit() {
    auto r = db_->exec("COMMIT", "commit");
    if (!r) return r;  // the destructor rolls back what is still open
    db_ = nullptr;
    return {};
}

}  // namespace mailward::store::sqlite
