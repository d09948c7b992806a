// The backend-neutral store suites (backend.hpp) on SQLite: a temp dir per test, the store opened
// through store::open as serve opens it.
#include "backend.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace mailward::store::test {
namespace {

class SqliteOpened final : public OpenedStore {
  public:
    explicit SqliteOpened(std::unique_ptr<Store> s) : s_(std::move(s)) {}
    QueueStore& queue() override { return s_->queue(); }
    UserStore& users() override { return s_->users(); }
    PolicyStore& policy() override { return s_->policy(); }
    EscrowStore& escrow() override { return s_->escrow(); }
    void close() override { s_->close(); }
    std::uint64_t commits() const override {
        auto* sq = dynamic_cast<sqlite::SqliteStore*>(s_.get());
        return sq ? sq->stats().commits : 0;
    }

  private:
    std::unique_ptr<Store> s_;
};

class SqliteBackend final : public Backend {
  public:
    std::unique_ptr<OpenedStore> open() override {
        auto s = store::open(config_for(dir_.path()));
        if (!s) {
            ADD_FAILURE() << "open: " << s.error().message();
            return nullptr;
        }
        return std::make_unique<SqliteOpened>(std::move(*s));
    }
    std::string sql_text(const std::string& sql) override {
        try {
            RawDb raw(dir_.path() / "mailward.db");
            return raw.text(sql);
        } catch (const std::exception& e) {
            ADD_FAILURE() << sql << ": " << e.what();
            return "";
        }
    }
    std::string sql_error(const std::string& sql) override {
        try {
            RawDb raw(dir_.path() / "mailward.db");
            raw.exec(sql);
            return "";
        } catch (const std::exception& e) {
            return e.what();
        }
    }

  private:
    TempDir dir_;
};

}  // namespace

std::unique_ptr<Backend> sqlite_backend() { return std::make_unique<SqliteBackend>(); }

const BackendParam kSqlite{"sqlite", sqlite_backend};
INSTANTIATE_TEST_SUITE_P(Sqlite, DeliveryStore, ::testing::Values(kSqlite), backend_name);
INSTANTIATE_TEST_SUITE_P(Sqlite, QueueAdmin, ::testing::Values(kSqlite), backend_name);
INSTANTIATE_TEST_SUITE_P(Sqlite, StoreContract, ::testing::Values(kSqlite), backend_name);
INSTANTIATE_TEST_SUITE_P(Sqlite, PolicyContract, ::testing::Values(kSqlite), backend_name);
INSTANTIATE_TEST_SUITE_P(Sqlite, EscrowContract, ::testing::Values(kSqlite), backend_name);

}  // namespace mailward::store::test
