// Opening the PostgreSQL store: the shared connection, the schema check or migration (Role::main
// migrates; the other roles need it current), the writer's own connection and its thread.
#include "store/postgres/pg_store.hpp"

#include <spdlog/spdlog.h>

#include "store/postgres/escrow_store.hpp"
#include "store/postgres/internal.hpp"

namespace mailward::store::postgres {
namespace {

class Category final : public boost::system::error_category {
  public:
    const char* name() const noexcept override { return "mailward.store.postgres"; }
    std::string message(int ev) const override {
        switch (static_cast<PgErrc>(ev)) {
            case PgErrc::lease_lost: return "lease lost: another node holds the message now";
        }
        return "unknown postgres store error";
    }
};

}  // namespace

const boost::system::error_category& pg_category() noexcept {
    static const Category c;
    return c;
}

struct PgStore::Impl {
    std::string dsn;
    std::mutex listener_mu;
    std::unique_ptr<WorkListener> listener;  // set_work_hint()
    SharedConn shared;
    std::unique_ptr<PgWriter> writer;
    std::unique_ptr<PgQueueStore> queue;
    std::unique_ptr<PgUserStore> users;
    std::unique_ptr<PgPolicyStore> policy;
    std::unique_ptr<PgEscrowStore> escrow;
};

Result<std::unique_ptr<PgStore>> PgStore::open(const std::string& dsn, Options opts) {
    auto impl = std::make_unique<Impl>();
    impl->dsn = dsn;
    auto shared = Conn::open(dsn);
    if (!shared) return shared.error();
    impl->shared.conn = std::move(*shared);
    if (opts.role == Role::main) {
        if (auto v = migrate(impl->shared.conn); !v) return v.error();
    } else {
        auto v = schema_version(impl->shared.conn);
        if (!v) return v.error();
        if (*v != latest_schema_version()) {
            spdlog::error(
                "store: the PostgreSQL schema is version {}, the {} process needs {} (the main process "
                "migrates it first)",
                *v, to_string(opts.role), latest_schema_version());
            return common::Errc::unsupported;
        }
    }
    auto writer_conn = Conn::open(dsn);
    if (!writer_conn) return writer_conn.error();
    impl->writer = std::make_unique<PgWriter>(std::move(*writer_conn), std::move(opts));
    impl->queue = std::make_unique<PgQueueStore>(impl->shared, *impl->writer);
    impl->users = std::make_unique<PgUserStore>(impl->shared);
    impl->policy = std::make_unique<PgPolicyStore>(impl->shared);
    impl->escrow = std::make_unique<PgEscrowStore>(impl->shared, *impl->writer);
    return std::unique_ptr<PgStore>(new PgStore(std::move(impl)));
}

PgStore::PgStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PgStore::~PgStore() { close(); }
QueueStore& PgStore::queue() { return *impl_->queue; }
UserStore& PgStore::users() { return *impl_->users; }
PolicyStore& PgStore::policy() { return *impl_->policy; }
EscrowStore& PgStore::escrow() { return *impl_->escrow; }
void PgStore::close() {
    {
        std::lock_guard lk(impl_->listener_mu);
        impl_->listener.reset();
    }
    impl_->writer->close();
}

void PgStore::set_work_hint(std::function<void()> hint) {
    std::lock_guard lk(impl_->listener_mu);
    impl_->listener.reset();
    if (hint) impl_->listener = std::make_unique<WorkListener>(impl_->dsn, std::move(hint));
}
WriterStats PgStore::stats() const { return impl_->writer->stats(); }

}  // namespace mailward::store::postgres
