// The store tests that hold for every backend take the backend as their GoogleTest parameter: a
// Backend makes one empty store (a temp dir for SQLite, a fresh database for PostgreSQL) and opens it
// as often as a test asks (a reopen, or a second node on the same data). store_test instantiates the
// suites with SQLite (backend_sqlite.cpp), store_pg_test with PostgreSQL (backend_pg.cpp, against the
// server the CTest fixture started: tests/support/pg_instance.py).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "store/store.hpp"
#include "store_test_util.hpp"

namespace mailward::store::test {

// One open store of either backend, reduced to what both have.
class OpenedStore {
  public:
    virtual ~OpenedStore() = default;
    virtual QueueStore& queue() = 0;
    virtual UserStore& users() = 0;
    virtual PolicyStore& policy() = 0;
    virtual void close() = 0;
    virtual std::uint64_t commits() const = 0;  // group commits so far
};

class Backend {
  public:
    virtual ~Backend() = default;
    // Opens the backend's store (the same data each time); nullptr after a failure the test sees.
    virtual std::unique_ptr<OpenedStore> open() = 0;
};

struct BackendParam {
    std::string name;
    std::function<std::unique_ptr<Backend>()> make;  // nullptr: not available (the test is skipped)
};
inline void PrintTo(const BackendParam& p, std::ostream* os) { *os << p.name; }
inline std::string backend_name(const ::testing::TestParamInfo<BackendParam>& p) { return p.param.name; }

std::unique_ptr<Backend> sqlite_backend();    // backend_sqlite.cpp
std::unique_ptr<Backend> postgres_backend();  // backend_pg.cpp

class BackendTest : public ::testing::TestWithParam<BackendParam> {
  protected:
    void SetUp() override {
        backend = GetParam().make();
        if (!backend) GTEST_SKIP() << "backend " << GetParam().name << " not available";
        st = backend->open();
        ASSERT_TRUE(st);
    }
    void TearDown() override {
        st.reset();
        backend.reset();
    }
    std::unique_ptr<Backend> backend;
    std::unique_ptr<OpenedStore> st;
};

// The suites (their TEST_Ps are in delivery_store_test.cpp, queue_admin_test.cpp, store_contract_test.cpp,
// policy_contract_test.cpp).
struct DeliveryStore : BackendTest {};
struct QueueAdmin : BackendTest {
    const TimePoint t0 = ms(1'800'000'000'000);
    QueueStore& q() { return st->queue(); }
};
struct StoreContract : BackendTest {};
struct PolicyContract : BackendTest {
    PolicyStore& p() { return st->policy(); }
};

}  // namespace mailward::store::test
