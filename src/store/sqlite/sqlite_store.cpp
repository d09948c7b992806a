// Opening the embedded store: create the file 0600, open the shared connection, migrate, open the
// writer's connection and start it.
#include "store/sqlite/sqlite_store.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "store/sqlite/internal.hpp"
#include "store/sqlite/migrations.hpp"

namespace mailward::store::sqlite {

// ---- SqliteStore ----

struct SqliteStore::Impl {
    std::unique_ptr<BodySpool> spool;  // outlives the writer (declared first, destroyed last)
    SharedConn shared;
    std::unique_ptr<GroupWriter> writer;
    std::unique_ptr<SqliteQueueStore> queue;
    std::unique_ptr<SqliteUserStore> users;
    std::unique_ptr<SqlitePolicyStore> policy;
    std::unique_ptr<SqliteEscrowStore> escrow;
};

namespace {

// SQLite creates a missing file with 0644 (less umask); create it first so it is 0600 from the
// first byte. SQLite then gives -wal and -shm the mode of the database file.
Result<void> create_private(const std::filesystem::path& file) {
    int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int err = errno;
        spdlog::error("store: cannot create {}: {}", file.string(), std::strerror(err));
        return error_code(err, boost::system::system_category());
    }
    ::close(fd);
    return {};
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::filesystem::path& file, Options opts) {
    if (opts.role == Role::main) {
        if (auto r = create_private(file); !r) return r.error();
    } else if (::access(file.c_str(), F_OK) != 0) {
        spdlog::error("store: {} does not exist (the main process creates it)", file.string());
        return common::Errc::not_found;
    }

    auto impl = std::make_unique<Impl>();
    auto shared = Db::open(file, opts.busy_timeout_ms);
    if (!shared) return shared.error();
    impl->shared.db = std::move(*shared);
    const Role role = opts.role;
    auto before = schema_version(impl->shared.db);
    if (role != Role::main) {
        // Only the main process migrates (before it forks the others): a role finds it done.
        if (!before || *before != latest_schema_version()) {
            spdlog::error(
                "store: {} has schema version {}, the {} process needs {} (the main "
                "process migrates it first)",
                file.string(), before ? *before : -1, to_string(role), latest_schema_version());
            return before ? error_code(common::Errc::unsupported) : before.error();
        }
        if (auto r = restrict_writes(impl->shared.db, role); !r) return r.error();
    } else {
        auto version = migrate(impl->shared.db);
        if (!version) {
            spdlog::error("store: cannot use {}", file.string());
            return version.error();
        }
        // A migration may have moved secrets (version 6 moved the wrapped keys out of their
        // rows): no old page image of them stays in the WAL.
        if (before && *before > 0 && *before < *version)
            (void)impl->shared.db.checkpoint_truncate(opts.busy_timeout_ms, opts.busy_timeout_ms);
    }

    auto spool = BodySpool::open(file.parent_path() / "spool", opts.spool_segment_bytes);
    if (!spool) return spool.error();
    impl->spool = std::move(*spool);
    if (role == Role::main) sweep_spool_segments(impl->shared.db, *impl->spool);  // what earlier runs left unused

    auto writer_db = Db::open(file, opts.busy_timeout_ms);
    if (!writer_db) return writer_db.error();
    if (auto r = restrict_writes(*writer_db, role); !r) return r.error();
    impl->writer = std::make_unique<GroupWriter>(std::move(*writer_db), std::move(opts), impl->spool.get());
    impl->queue = std::make_unique<SqliteQueueStore>(impl->shared, *impl->writer, impl->spool.get());
    impl->users = std::make_unique<SqliteUserStore>(impl->shared);
    impl->policy = std::make_unique<SqlitePolicyStore>(impl->shared);
    impl->escrow = std::make_unique<SqliteEscrowStore>(impl->shared, *impl->writer);
    spdlog::debug("store: opened {} for the {} process", file.string(), to_string(role));
    return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SqliteStore::~SqliteStore() { close(); }

QueueStore& SqliteStore::queue() { return *impl_->queue; }

UserStore& SqliteStore::users() { return *impl_->users; }
PolicyStore& SqliteStore::policy() { return *impl_->policy; }
EscrowStore& SqliteStore::escrow() { return *impl_->escrow; }

void SqliteStore::close() { impl_->writer->close(); }

WriterStats SqliteStore::stats() const { return impl_->writer->stats(); }

}  // namespace mailward::store::sqlite
