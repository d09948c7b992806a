// PostgreSQL for the store tests: the server the CTest fixture started (tests/support/pg_instance.py
// writes its DSN to the file MAILWARD_PG_DSN_FILE names; MAILWARD_PG_DSN gives one directly), a fresh
// database per test (dropped afterwards) and raw SQL on it for checks the store does not expose.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/postgres/pg_store.hpp"

namespace mailward::store::test {

// The server's DSN; nullopt when none is configured (the tests are then skipped). A configured but
// unreadable DSN file is a test failure, not a skip.
std::optional<std::string> pg_server_dsn();

// A database of its own, created on construction and dropped (WITH (FORCE)) on destruction.
class PgDatabase {
  public:
    explicit PgDatabase(const std::string& server_dsn);
    ~PgDatabase();
    PgDatabase(const PgDatabase&) = delete;
    PgDatabase& operator=(const PgDatabase&) = delete;

    bool ok() const { return ok_; }
    const std::string& dsn() const { return dsn_; }  // connects to this database
    // Runs sql with text parameters on a connection of its own; the first column of the first row
    // ("" when none). An error fails the test and returns nullopt.
    std::optional<std::string> query(const std::string& sql, const std::vector<std::string>& params = {}) const;
    // Runs sql expecting it to fail: the server's error message ("" when it succeeded).
    std::string error_of(const std::string& sql, const std::vector<std::string>& params = {}) const;

  private:
    std::string server_dsn_, name_, dsn_;
    bool ok_ = false;
};

// The fixture of the PostgreSQL-only tests: a database of its own per test (skipped without a
// server), and node(): a store on it, as one node of a cluster would open it.
struct PgTest : ::testing::Test {
    std::unique_ptr<PgDatabase> db;
    void SetUp() override {
        auto server = pg_server_dsn();
        if (!server) GTEST_SKIP() << "no PostgreSQL configured (MAILWARD_PG_DSN_FILE; ctest starts one)";
        db = std::make_unique<PgDatabase>(*server);
        ASSERT_TRUE(db->ok());
    }
    std::unique_ptr<postgres::PgStore> node(postgres::Options opts = {}) {
        auto s = postgres::PgStore::open(db->dsn(), std::move(opts));
        if (!s) ADD_FAILURE() << "open: " << s.error().message();
        return s ? std::move(*s) : nullptr;
    }
};

}  // namespace mailward::store::test
