// The PostgreSQL store: the queue (QueueStore), the user accounts (UserStore), the learned TLS
// policy (PolicyStore) and escrow (EscrowStore) in a PostgreSQL 15 database shared by several nodes. Submissions go
// through a group-commit writer (one thread, one connection, many sessions' messages per transaction; every completion
// runs after COMMIT returned OK); leases are taken with short FOR UPDATE SKIP LOCKED transactions and carry a
// generation, so a stale node's outcome is refused (docs/design.md, "PostgreSQL store"). Raises of the learned policy
// are monotonic in SQL. libpq stays inside store/postgres/*.cpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/result.hpp"
#include "store/escrow_reader.hpp"
#include "store/escrow_store.hpp"
#include "store/store.hpp"

namespace mailward::store::postgres {

struct Options {
    // Group-commit caps, as SQLite's (sqlite_store.hpp): messages and body octets per transaction.
    std::size_t max_batch_messages = 256;
    std::size_t max_batch_bytes = std::size_t{64} << 20;
    // > 0: after the first pending submit, wait up to this long for more before committing.
    std::chrono::milliseconds commit_interval{0};
    // Role::main creates and migrates the schema; any other role needs it current.
    Role role = Role::main;
    // Test hook: runs on the writer thread inside the batch transaction just before COMMIT, with
    // the server process id of the writer's connection (a test kills it to make COMMIT fail).
    std::function<void(int backend_pid)> before_commit;
};

// Group-commit figures since open() (the same meaning as sqlite::WriterStats).
struct WriterStats {
    std::uint64_t submitted = 0;
    std::uint64_t stored = 0;
    std::uint64_t rejected = 0;
    std::uint64_t commits = 0;
    std::uint64_t failed_commits = 0;
    std::uint64_t largest_batch = 0;
};

// Errors of the PostgreSQL store beyond common::Errc.
enum class PgErrc {
    // complete_attempt: the message no longer carries the lease this store object took (it expired
    // and another node, or another process under the same owner name, leased it): nothing changed.
    lease_lost = 1,
};
const boost::system::error_category& pg_category() noexcept;
inline error_code make_error_code(PgErrc e) noexcept { return {static_cast<int>(e), pg_category()}; }

// The newest schema version this build writes (schema_version table).
int latest_schema_version();

class PgStore final : public Store {
  public:
    // Connects with the libpq connection string dsn (two connections: the writer's and a shared
    // one), migrates the schema (Role::main) and starts the writer thread.
    static Result<std::unique_ptr<PgStore>> open(const std::string& dsn, Options opts = {});
    ~PgStore() override;  // close()
    PgStore(const PgStore&) = delete;
    PgStore& operator=(const PgStore&) = delete;

    QueueStore& queue() override;
    UserStore& users() override;
    // The learned TLS policy, overrides, incidents and audit (every node sees one policy).
    PolicyStore& policy() override;
    EscrowStore& escrow() override;
    // Commits what was submitted, then stops the writer; later submits get shutting_down.
    void close() override;
    // LISTENs on a connection of its own (WorkListener); the writers of every node NOTIFY.
    void set_work_hint(std::function<void()> hint) override;
    WriterStats stats() const;

    struct Impl;

  private:
    explicit PgStore(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// The key holder's read-only view of the escrow tables (store/escrow_reader.hpp) on its own
// connection, which cannot write (default_transaction_read_only). The schema must be current.
Result<std::unique_ptr<EscrowReader>> open_escrow_reader(const std::string& dsn);

}  // namespace mailward::store::postgres

namespace boost::system {
template <>
struct is_error_code_enum<mailward::store::postgres::PgErrc> : std::true_type {};
}  // namespace boost::system
