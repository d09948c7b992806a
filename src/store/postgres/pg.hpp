// A thin RAII layer over libpq for the PostgreSQL store: one connection (Conn), one result (Rows),
// and parameterised statements only - values travel as libpq parameters ($1, $2, ...), never in the
// SQL text. Errors are Result<T> with common::Errc (unique violation = already_exists, a lost
// connection or any other server error = storage_error); nothing here throws. libpq's own header stays
// in pg.cpp: this header only forward-declares its handles.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

struct pg_conn;
struct pg_result;

namespace mailward::store::postgres {

// The values of one statement, in $n order. Text and integers go as text; bytea as binary.
class Params {
  public:
    Params& text(std::string_view v);
    Params& int64(std::int64_t v);
    Params& boolean(bool v);
    Params& bytea(std::string_view v);
    Params& null();

    std::size_t size() const { return values_.size(); }
    const char* const* values() const { return values_.data(); }
    const int* lengths() const { return lengths_.data(); }
    const int* formats() const { return formats_.data(); }

  private:
    std::deque<std::string> store_;  // stable addresses for values_
    std::vector<const char*> values_;
    std::vector<int> lengths_, formats_;
};

// The result of one statement. Values are read as text (or raw bytes with binary results).
class Rows {
  public:
    Rows() = default;
    explicit Rows(pg_result* r);
    ~Rows();
    Rows(Rows&& o) noexcept;
    Rows& operator=(Rows&& o) noexcept;
    Rows(const Rows&) = delete;
    Rows& operator=(const Rows&) = delete;

    int size() const;
    bool is_null(int row, int col) const;
    std::string text(int row, int col) const;  // raw bytes with a binary result
    std::int64_t int64(int row, int col) const;
    bool boolean(int row, int col) const;
    // Rows changed by an INSERT, UPDATE or DELETE.
    std::int64_t affected() const;
    pg_result* get() const { return r_; }

  private:
    pg_result* r_ = nullptr;
};

class Conn {
  public:
    // Connects with a libpq connection string ("host=127.0.0.1 port=5432 dbname=mailward ...").
    static Result<Conn> open(const std::string& dsn);
    Conn() = default;
    ~Conn();
    Conn(Conn&& o) noexcept;
    Conn& operator=(Conn&& o) noexcept;
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;

    // Runs one statement with its parameters. binary_result: values come back as raw bytes (for
    // bytea). A connection found broken is re-established once before the statement, never inside
    // a transaction begun with begin() (then the statement fails: a statement on a new session would
    // run outside the transaction and commit on its own).
    Result<Rows> exec(const char* sql, const Params& p = {}, bool binary_result = false);
    // A statement without parameters or rows (SAVEPOINT, SET, ...).
    Result<void> command(const char* sql);
    // BEGIN (reconnecting first when the connection was lost between transactions); sql may add
    // an isolation level ("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").
    Result<void> begin(const char* sql = "BEGIN");
    // Several statements without parameters (constant SQL only: the schema's migration steps).
    Result<void> script(const char* sql);
    // COMMIT: succeeds only when the server answered COMMIT (an aborted transaction answers ROLLBACK,
    // which is reported as storage_error).
    Result<void> commit();
    // ROLLBACK, ignoring errors (a dead connection has nothing to roll back).
    void rollback();
    bool in_transaction() const;
    bool broken() const;
    int backend_pid() const;  // the server process serving this connection (tests, logs)
    // LISTEN/NOTIFY (notify.cpp): the socket to wait on for input, and how many notifications
    // arrived since the last call (reads what the socket has; an error when the connection broke).
    int socket() const;
    Result<std::size_t> notifications();

  private:
    explicit Conn(pg_conn* c) : c_(c) {}
    pg_conn* c_ = nullptr;
    bool tx_open_ = false;  // between begin() and commit()/rollback()
};

// BEGIN ... COMMIT on a connection; rolled back when it goes out of scope uncommitted.
class Tx {
  public:
    static Result<Tx> begin(Conn& c, const char* sql = "BEGIN");
    Tx(Tx&& o) noexcept : c_(o.c_) { o.c_ = nullptr; }
    Tx& operator=(Tx&&) = delete;
    Tx(const Tx&) = delete;
    ~Tx();
    Result<void> commit();

  private:
    explicit Tx(Conn& c) : c_(&c) {}
    Conn* c_;
};

}  // namespace mailward::store::postgres
