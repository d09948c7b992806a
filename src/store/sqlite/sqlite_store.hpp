// The embedded store: one SQLite file in WAL mode (synchronous=FULL, foreign keys on) and, for
// large bodies, the body spool beside it (spool.hpp). Two
// connections: the group-commit writer's own (a dedicated thread batching submit() calls into one
// transaction each) and a shared one, behind a mutex, for reads and small administrative writes.
// Trusts its own file only after the schema migration check (see migrations.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>

#include "common/result.hpp"
#include "store/escrow_reader.hpp"
#include "store/store.hpp"

struct sqlite3;

namespace mailward::store::sqlite {

struct Options {
    // Group-commit caps: one transaction takes at most this many messages / body octets (a single
    // larger message still goes alone).
    std::size_t max_batch_messages = 256;
    std::size_t max_batch_bytes = std::size_t{64} << 20;
    // > 0: after the first pending submit, wait up to this long for more before committing
    // ([store] commit_interval). 0: commit as soon as the writer is free; batches still form while
    // the previous commit is syncing.
    std::chrono::milliseconds commit_interval{0};
    int busy_timeout_ms = 10000;
    // Role::main creates and migrates the schema; any other role needs it current and gets
    // connections that may write only writable_tables(role) (store.hpp).
    Role role = Role::main;
    // Bodies of at least this many octets go to the body spool (spool.hpp: segment files in
    // <database directory>/spool) instead of the database; smaller ones stay inline.
    std::size_t spool_min_bytes = 8192;
    // A spool segment takes appends until it is this big.
    std::uint64_t spool_segment_bytes = std::uint64_t{64} << 20;
    // Test hook: runs on the writer thread inside the batch transaction just before COMMIT.
    std::function<void(sqlite3*)> before_commit;
};

// Group-commit figures since open().
struct WriterStats {
    std::uint64_t submitted = 0;       // submit() calls accepted into the queue
    std::uint64_t stored = 0;          // messages made durable (done called with success)
    std::uint64_t rejected = 0;        // messages whose done got an error (incl. failed commits)
    std::uint64_t commits = 0;         // successful COMMITs of batch transactions
    std::uint64_t failed_commits = 0;  // batch transactions that failed to BEGIN or COMMIT
    std::uint64_t largest_batch = 0;   // most messages in one transaction
};

// The key holder's read-only escrow view of an existing file (store/escrow_reader.hpp).
Result<std::unique_ptr<EscrowReader>> open_escrow_reader(const std::filesystem::path& file, int busy_timeout_ms);

class SqliteStore final : public Store {
  public:
    // Opens or creates file (a new file is created 0600; SQLite gives the -wal and -shm files the
    // same mode), migrates the schema and starts the writer thread.
    static Result<std::unique_ptr<SqliteStore>> open(const std::filesystem::path& file, Options opts = {});

    ~SqliteStore() override;  // close()
    SqliteStore(const SqliteStore&) = delete;
    SqliteStore& operator=(const SqliteStore&) = delete;

    QueueStore& queue() override;
    UserStore& users() override;
    PolicyStore& policy() override;
    EscrowStore& escrow() override;
    // Commits everything already submitted, calls its completions, stops the writer. Later submits
    // complete at once, on the calling thread, with common::Errc::shutting_down. Reads keep working
    // until destruction. Idempotent; when called from a submit completion (the writer thread) it
    // only requests the stop.
    void close() override;

    WriterStats stats() const;
    std::uint64_t submitted() const { return stats().submitted; }
    std::uint64_t commits() const { return stats().commits; }

  private:
    struct Impl;
    explicit SqliteStore(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace mailward::store::sqlite
