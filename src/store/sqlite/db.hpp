// A thin RAII layer over the SQLite C API: one connection (Db) with a cache of prepared
// statements, and a borrowed statement handle (Stmt) that resets itself when it goes out of scope.
// Every SQLite failure becomes a Result error and is logged once, with sqlite3_errmsg, where it
// happens. Not thread-safe: the owner serialises access to a Db (the store uses one mutex per Db).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace mailward::store::sqlite {

// Maps a SQLite result code (extended codes on) to the project's errors: unique/primary-key
// violations -> already_exists, BUSY/LOCKED -> timeout, FULL/IOERR -> io_error,
// CORRUPT/NOTADB -> corrupt, anything else -> storage_error.
error_code map_sqlite_error(int rc) noexcept;
// The same, with the errno SQLite saw (sqlite3_system_errno): a full or read-only file system is
// Errc::storage_full whatever SQLite's own code (SQLITE_FULL, SQLITE_IOERR_WRITE, SQLITE_READONLY...).
error_code map_sqlite_error(int rc, int system_errno) noexcept;

class Stmt {
  public:
    Stmt() = default;
    Stmt(sqlite3_stmt* s, sqlite3* db) : stmt_(s), db_(db) {}
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    Stmt(Stmt&& o) noexcept : stmt_(o.stmt_), db_(o.db_), bind_rc_(o.bind_rc_) { o.stmt_ = nullptr; }
    Stmt& operator=(Stmt&&) = delete;
    ~Stmt();  // resets and clears bindings; the statement itself stays cached in its Db

    // Parameters are 1-based. Text and blob values must outlive step()/run(); a failed bind is
    // remembered and reported by the next step()/run().
    Stmt& bind(int i, std::string_view text);
    Stmt& bind_blob(int i, std::string_view bytes);
    Stmt& bind(int i, std::int64_t v);
    Stmt& bind_null(int i);

    // true: a row is available; false: done.
    Result<bool> step();
    // Runs a statement that returns no rows; a row is treated as done.
    Result<void> run();

    // Makes the statement ready to bind and run again (done by the destructor as well).
    void reset();

    // Columns are 0-based.
    std::int64_t int64(int col) const;
    std::string text(int col) const;  // byte-exact, NUL bytes included
    std::string blob(int col) const;  // byte-exact
    bool is_null(int col) const;

  private:
    sqlite3_stmt* stmt_ = nullptr;
    sqlite3* db_ = nullptr;
    int bind_rc_ = 0;  // 0 = SQLITE_OK
};

// Sets how long a statement waits for a lock another connection holds (polling every 100 us at
// first, then every millisecond; 0: not at all), in place of SQLite's coarser sqlite3_busy_timeout.
int set_busy_timeout(sqlite3* db, int timeout_ms);

// The power-loss test's negative run (docs/testing.md, "Power loss"): in a debug build (no NDEBUG)
// with MAILWARD_UNSAFE_NO_FSYNC=1 in the environment, the queue is never synced (synchronous=OFF,
// no fsync of the body spool), so the test can show that it catches a missing fsync. Release
// builds ignore the variable. Logged once, as a warning, when on.
bool unsafe_no_fsync();

class Db {
  public:
    Db() = default;
    Db(const Db&) = delete;
    Db& operator=(const Db&) = delete;
    Db(Db&& o) noexcept;
    Db& operator=(Db&& o) noexcept;
    ~Db();

    // Opens (creating if needed) path read-write with extended result codes, then applies the
    // connection settings every mailward connection uses: foreign_keys=ON, synchronous=FULL,
    // secure_delete=ON (freed pages and cells are zeroed), busy_timeout. WAL mode is set by the migration step (it is
    // persistent in the file).
    static Result<Db> open(const std::filesystem::path& path, int busy_timeout_ms);
    // Opens an existing path read-only (SQLITE_OPEN_READONLY: no statement can write), with the
    // busy timeout and extended result codes.
    static Result<Db> open_readonly(const std::filesystem::path& path, int busy_timeout_ms);

    sqlite3* handle() const { return db_; }
    explicit operator bool() const { return db_ != nullptr; }

    // Runs one or more statements without results (PRAGMAs, DDL, BEGIN/COMMIT). what names the
    // operation in the log line.
    Result<void> exec(const char* sql, std::string_view what);
    // A cached prepared statement for sql (which must be a single statement). sql is expected to be
    // a string literal: the cache is keyed by its text.
    Result<Stmt> prepare(std::string_view sql);
    // Rows changed by the last INSERT/UPDATE/DELETE on this connection.
    std::int64_t changes() const;
    // The rowid of the last row this connection inserted.
    std::int64_t last_insert_rowid() const;
    // true when no transaction is open (SQLite rolled back by itself after some errors).
    bool autocommit() const;

    // Copies every WAL frame into the database and truncates the WAL to zero bytes
    // (wal_checkpoint(TRUNCATE)), waiting at most about wait_ms for readers and writers in the
    // way; the connection's busy timeout is then set to restore_busy_timeout_ms. true: the WAL is
    // empty now; false: something was in the way (try again later).
    Result<bool> checkpoint_truncate(int wait_ms, int restore_busy_timeout_ms);

    // Logs "store: <what>: <sqlite3_errmsg> (code)" at error level and returns the mapped error.
    error_code fail(int rc, std::string_view what) const;

  private:
    void close() noexcept;

    sqlite3* db_ = nullptr;
    std::filesystem::path path_;
    std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// Opens a transaction (BEGIN IMMEDIATE for writers, BEGIN for readers); rolls it back in the
// destructor unless commit() succeeded. Use: auto tx = Tx::begin(db, true); if (!tx) return ...
class Tx {
  public:
    static Result<Tx> begin(Db& db, bool write);
    Tx(Tx&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
    Tx(const Tx&) = delete;
    Tx& operator=(const Tx&) = delete;
    Tx& operator=(Tx&&) = delete;
    ~Tx();
    Result<void> commit();

  private:
    explicit Tx(Db& db) : db_(&db) {}
    Db* db_ = nullptr;
};

}  // namespace mailward::store::sqlite
