// The store tests that hold for every backend take the backend as their GoogleTest parameter: a
// Backend makes one empty store (a temp dir for SQLite, a fresh database for PostgreSQL) and opens it
// as often as a test asks (a reopen, or a second node on the same data). store_test instantiates the
// suites with SQLite (backend_sqlite.cpp), store_pg_test with PostgreSQL (backend_pg.cpp, against the
// server the CTest fixture started: tests/support/pg_instance.py).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <future>
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
    virtual EscrowStore& escrow() = 0;
    virtual void close() = 0;
    virtual std::uint64_t commits() const = 0;  // group commits so far
};

class Backend {
  public:
    virtual ~Backend() = default;
    // Opens the backend's store (the same data each time); nullptr after a failure the test sees.
    virtual std::unique_ptr<OpenedStore> open() = 0;
    // Raw SQL on the store's data (portable statements only), for what the interfaces do not show:
    // the first column of the first row ("" when none; an error fails the test), and the error of a
    // statement expected to fail ("" when it succeeded).
    virtual std::string sql_text(const std::string& sql) = 0;
    virtual std::string sql_error(const std::string& sql) = 0;
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
// policy_contract_test.cpp, escrow_contract_test.cpp).
struct DeliveryStore : BackendTest {};
struct QueueAdmin : BackendTest {
    const TimePoint t0 = ms(1'800'000'000'000);
    QueueStore& q() { return st->queue(); }
};
struct StoreContract : BackendTest {};
struct PolicyContract : BackendTest {
    PolicyStore& p() { return st->policy(); }
};

// Escrow: helpers to queue a recipient awaiting escrow and seal it.
struct EscrowContract : BackendTest {
    const TimePoint t0 = ms(1'800'000'000'000);
    EscrowStore& es() { return st->escrow(); }
    // A chain function any test can recompute: "prev|event/detail".
    static std::string chain_fn(const std::string& prev, const EscrowAuditEntry& e) {
        return prev + "|" + e.event + "/" + e.detail;
    }
    // Queues a message whose single recipient awaits escrow.
    void queue_awaiting(const std::string& qid) {
        auto m = simple_message(qid);
        m.envelope.recipients[0].state = RcptState::awaiting_escrow;
        ASSERT_TRUE(submit_sync(st->queue(), std::move(m)));
    }
    EscrowRecord record(const std::string& id, const std::string& qid) const {
        EscrowRecord r;
        r.id = id;
        r.queue_id = qid;
        r.rcpt_index = 0;
        r.sender = "alice@example.test";
        r.sender_name = "Alice <alice@example.test>";
        r.sender_mode = "tls-or-escrow";
        r.recipient = "bob@example.org";
        r.token_hash = "tok-" + id;
        r.wrapped_key = std::string("KEY\0KEY", 7);
        r.sealed = "SEALED-" + id;
        r.created = t0;
        r.expires = t0 + std::chrono::hours(24);
        return r;
    }
    EscrowAuditEntry entry(std::string event = "", std::string detail = "") const {
        EscrowAuditEntry e;
        e.at = t0;
        e.event = std::move(event);
        e.detail = std::move(detail);
        return e;
    }
    // Seals rec through es (its "sealed" row with detail "d"), queueing the notice notice_id.
    static Result<void> seal(EscrowStore& es, EscrowRecord rec, const std::string& notice_id, TimePoint at) {
        EscrowAuditEntry first;
        first.at = at;
        first.event = "sealed";
        first.detail = "d";
        std::promise<Result<void>> p;
        auto f = p.get_future();
        es.create(std::move(rec), std::move(first), simple_message(notice_id, "Subject: notice\r\n\r\nlink\r\n"),
                  chain_fn, [&p](Result<void> r) { p.set_value(r); });
        return f.get();
    }
    Result<void> create(EscrowRecord rec, const std::string& notice_id) {
        return seal(es(), std::move(rec), notice_id, t0);
    }
};

}  // namespace mailward::store::test
