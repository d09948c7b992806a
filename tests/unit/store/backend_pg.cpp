// The backend-neutral store suites (backend.hpp) on PostgreSQL, and the test database helpers
// (pg_test_util.hpp): each test gets a database of its own on the fixture's server.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <random>

#include "backend.hpp"
#include "pg_test_util.hpp"
#include "store/postgres/pg_store.hpp"

namespace mailward::store::test {

std::optional<std::string> pg_server_dsn() {
    if (const char* dsn = std::getenv("MAILWARD_PG_DSN"); dsn && *dsn) return std::string(dsn);
    const char* file = std::getenv("MAILWARD_PG_DSN_FILE");
    if (!file || !*file) return std::nullopt;
    std::ifstream in(file);
    std::string dsn;
    std::getline(in, dsn);
    if (dsn.empty()) {
        ADD_FAILURE() << "MAILWARD_PG_DSN_FILE=" << file << " has no DSN (did the pg fixture start?)";
        return std::nullopt;
    }
    return dsn;
}

namespace {

// Runs one statement on a fresh connection; the first value of the first row.
std::optional<std::string> run(const std::string& dsn, const std::string& sql, const std::vector<std::string>& params,
                               std::string* error = nullptr) {
    PGconn* c = PQconnectdb(dsn.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
        ADD_FAILURE() << "connect: " << PQerrorMessage(c);
        PQfinish(c);
        return std::nullopt;
    }
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    PGresult* r =
        PQexecParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0);
    std::optional<std::string> out;
    const auto st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        out = (st == PGRES_TUPLES_OK && PQntuples(r) > 0) ? std::string(PQgetvalue(r, 0, 0)) : std::string();
    } else if (error) {
        *error = PQresultErrorMessage(r);
    } else {
        ADD_FAILURE() << sql << ": " << PQresultErrorMessage(r);
    }
    PQclear(r);
    PQfinish(c);
    return out;
}

std::string quote_ident(const std::string& dsn, const std::string& name) {
    PGconn* c = PQconnectdb(dsn.c_str());
    char* q = PQescapeIdentifier(c, name.c_str(), name.size());
    std::string out = q ? q : "";
    PQfreemem(q);
    PQfinish(c);
    return out;
}

}  // namespace

PgDatabase::PgDatabase(const std::string& server_dsn) : server_dsn_(server_dsn) {
    static std::atomic<int> counter{0};
    std::random_device rd;
    name_ = "mwt_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + std::to_string(rd() % 100000);
    // DDL takes no parameters: the name is ours (digits and '_'), quoted all the same.
    ok_ = run(server_dsn_, "CREATE DATABASE " + quote_ident(server_dsn_, name_), {}).has_value();
    dsn_ = server_dsn_ + " dbname=" + name_;  // a later keyword overrides the server DSN's dbname
}

PgDatabase::~PgDatabase() {
    if (ok_) (void)run(server_dsn_, "DROP DATABASE " + quote_ident(server_dsn_, name_) + " WITH (FORCE)", {});
}

std::optional<std::string> PgDatabase::query(const std::string& sql, const std::vector<std::string>& params) const {
    return run(dsn_, sql, params);
}

std::string PgDatabase::error_of(const std::string& sql, const std::vector<std::string>& params) const {
    std::string error;
    (void)run(dsn_, sql, params, &error);
    return error;
}

namespace {

class PgOpened final : public OpenedStore {
  public:
    explicit PgOpened(std::unique_ptr<postgres::PgStore> s) : s_(std::move(s)) {}
    QueueStore& queue() override { return s_->queue(); }
    UserStore& users() override { return s_->users(); }
    PolicyStore& policy() override { return s_->policy(); }
    EscrowStore& escrow() override { return s_->escrow(); }
    void close() override { s_->close(); }
    std::uint64_t commits() const override { return s_->stats().commits; }

  private:
    std::unique_ptr<postgres::PgStore> s_;
};

class PgBackend final : public Backend {
  public:
    explicit PgBackend(const std::string& server) : db_(server) {}
    std::unique_ptr<OpenedStore> open() override {
        if (!db_.ok()) return nullptr;
        auto s = postgres::PgStore::open(db_.dsn());
        if (!s) {
            ADD_FAILURE() << "open: " << s.error().message();
            return nullptr;
        }
        return std::make_unique<PgOpened>(std::move(*s));
    }
    std::string sql_text(const std::string& sql) override { return db_.query(sql).value_or(""); }
    std::string sql_error(const std::string& sql) override { return db_.error_of(sql); }

  private:
    PgDatabase db_;
};

}  // namespace

std::unique_ptr<Backend> postgres_backend() {
    auto server = pg_server_dsn();
    if (!server) return nullptr;
    return std::make_unique<PgBackend>(*server);
}

const BackendParam kPostgres{"postgres", postgres_backend};
INSTANTIATE_TEST_SUITE_P(Postgres, DeliveryStore, ::testing::Values(kPostgres), backend_name);
INSTANTIATE_TEST_SUITE_P(Postgres, QueueAdmin, ::testing::Values(kPostgres), backend_name);
INSTANTIATE_TEST_SUITE_P(Postgres, StoreContract, ::testing::Values(kPostgres), backend_name);
INSTANTIATE_TEST_SUITE_P(Postgres, PolicyContract, ::testing::Values(kPostgres), backend_name);
INSTANTIATE_TEST_SUITE_P(Postgres, EscrowContract, ::testing::Values(kPostgres), backend_name);

}  // namespace mailward::store::test
