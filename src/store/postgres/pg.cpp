// libpq behind pg.hpp: connections, parameterised statements (PQexecParams, extended protocol),
// results and the mapping of SQLSTATEs to common::Errc. Server messages are logged here, once, with
// the statement's first words (never its parameter values: they may be addresses or bodies).
#include "store/postgres/pg.hpp"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstring>

namespace mailward::store::postgres {
namespace {

std::string_view head(const char* sql) {
    std::string_view s(sql);
    return s.substr(0, std::min<std::size_t>(s.size(), 48));
}

std::string one_line(const char* msg) {
    std::string s = msg ? msg : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    for (auto& c : s)
        if (c == '\n') c = ' ';
    return s;
}

error_code map_error(const PGresult* r) {
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    if (state && std::strcmp(state, "23505") == 0) return common::Errc::already_exists;  // unique_violation
    if (state && std::strncmp(state, "53", 2) == 0) return common::Errc::storage_full;   // insufficient resources
    return common::Errc::storage_error;
}

}  // namespace

// ---- Params ----

Params& Params::text(std::string_view v) {
    store_.emplace_back(v);
    values_.push_back(store_.back().c_str());
    lengths_.push_back(0);
    formats_.push_back(0);
    return *this;
}

Params& Params::int64(std::int64_t v) { return text(std::to_string(v)); }

Params& Params::boolean(bool v) { return text(v ? "true" : "false"); }

Params& Params::bytea(std::string_view v) {
    store_.emplace_back(v);
    values_.push_back(store_.back().data());
    lengths_.push_back(static_cast<int>(v.size()));
    formats_.push_back(1);
    return *this;
}

Params& Params::null() {
    values_.push_back(nullptr);
    lengths_.push_back(0);
    formats_.push_back(0);
    return *this;
}

// ---- Rows ----

Rows::Rows(pg_result* r) : r_(r) {}
Rows::~Rows() {
    if (r_) PQclear(r_);
}
Rows::Rows(Rows&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
Rows& Rows::operator=(Rows&& o) noexcept {
    if (this != &o) {
        if (r_) PQclear(r_);
        r_ = o.r_;
        o.r_ = nullptr;
    }
    return *this;
}
int Rows::size() const { return r_ ? PQntuples(r_) : 0; }
bool Rows::is_null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
std::string Rows::text(int row, int col) const {
    return std::string(PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col)));
}
std::int64_t Rows::int64(int row, int col) const {
    const char* p = PQgetvalue(r_, row, col);
    std::int64_t v = 0;
    std::from_chars(p, p + PQgetlength(r_, row, col), v);
    return v;
}
bool Rows::boolean(int row, int col) const { return PQgetvalue(r_, row, col)[0] == 't'; }
std::int64_t Rows::affected() const {
    const char* n = r_ ? PQcmdTuples(r_) : "";
    std::int64_t v = 0;
    std::from_chars(n, n + std::strlen(n), v);
    return v;
}

// ---- Conn ----

namespace {
// The server's NOTICE messages ("relation ... already exists, skipping") go to the log at debug
// level, not to stderr as libpq's default does.
void log_notice(void*, const char* message) { spdlog::debug("store: PostgreSQL: {}", one_line(message)); }
}  // namespace

Result<Conn> Conn::open(const std::string& dsn) {
    PGconn* c = PQconnectdb(dsn.c_str());
    if (!c) return common::Errc::storage_error;
    if (PQstatus(c) != CONNECTION_OK) {
        spdlog::error("store: cannot connect to PostgreSQL: {}", one_line(PQerrorMessage(c)));
        PQfinish(c);
        return common::Errc::storage_error;
    }
    PQsetNoticeProcessor(c, log_notice, nullptr);
    Conn conn(c);
    // Times are stored as integers; text values must round-trip byte for byte.
    if (auto r = conn.command("SET client_encoding = 'UTF8'"); !r) return r.error();
    return conn;
}

Conn::~Conn() {
    if (c_) PQfinish(c_);
}
Conn::Conn(Conn&& o) noexcept : c_(o.c_), tx_open_(o.tx_open_) { o.c_ = nullptr; }
Conn& Conn::operator=(Conn&& o) noexcept {
    if (this != &o) {
        if (c_) PQfinish(c_);
        c_ = o.c_;
        tx_open_ = o.tx_open_;
        o.c_ = nullptr;
    }
    return *this;
}

Result<void> Conn::begin(const char* sql) {
    tx_open_ = false;
    if (auto r = command(sql); !r) return r;
    tx_open_ = true;
    return {};
}

bool Conn::broken() const { return !c_ || PQstatus(c_) != CONNECTION_OK; }

bool Conn::in_transaction() const { return c_ && PQtransactionStatus(c_) != PQTRANS_IDLE; }

int Conn::backend_pid() const { return c_ ? PQbackendPID(c_) : 0; }

int Conn::socket() const { return c_ ? PQsocket(c_) : -1; }

Result<std::size_t> Conn::notifications() {
    if (!c_ || PQconsumeInput(c_) == 0 || PQstatus(c_) != CONNECTION_OK) return common::Errc::storage_error;
    std::size_t n = 0;
    while (PGnotify* note = PQnotifies(c_)) {
        ++n;
        PQfreemem(note);
    }
    return n;
}

Result<Rows> Conn::exec(const char* sql, const Params& p, bool binary_result) {
    if (!c_) return common::Errc::storage_error;
    if (PQstatus(c_) != CONNECTION_OK) {
        if (tx_open_) {
            spdlog::error("store: PostgreSQL connection lost inside a transaction ({})", head(sql));
            return common::Errc::storage_error;
        }
        // Lost (server restart, failover, killed backend): one reconnect. Whatever transaction was
        // open is gone with the old session, so the caller's BEGIN starts afresh.
        PQreset(c_);
        if (PQstatus(c_) != CONNECTION_OK) {
            spdlog::error("store: PostgreSQL connection lost: {}", one_line(PQerrorMessage(c_)));
            return common::Errc::storage_error;
        }
        spdlog::warn("store: reconnected to PostgreSQL");
        (void)command("SET client_encoding = 'UTF8'");
    }
    Rows rows(PQexecParams(c_, sql, static_cast<int>(p.size()), nullptr, p.values(), p.lengths(), p.formats(),
                           binary_result ? 1 : 0));
    // (PQexecParams returns null only when out of memory or not connected.)
    auto* r = rows.get();
    const auto st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return rows;
    auto ec = map_error(r);
    if (ec == common::Errc::already_exists)
        spdlog::debug("store: PostgreSQL: {} ({})", one_line(r ? PQresultErrorMessage(r) : ""), head(sql));
    else
        spdlog::error("store: PostgreSQL: {} ({})", one_line(r ? PQresultErrorMessage(r) : PQerrorMessage(c_)),
                      head(sql));
    return ec;
}

Result<void> Conn::script(const char* sql) {
    if (broken()) return common::Errc::storage_error;
    Rows rows(PQexec(c_, sql));
    auto* r = rows.get();
    if (r && PQresultStatus(r) == PGRES_COMMAND_OK) return {};
    spdlog::error("store: PostgreSQL: {}", one_line(r ? PQresultErrorMessage(r) : PQerrorMessage(c_)));
    return map_error(r);
}

Result<void> Conn::command(const char* sql) {
    auto r = exec(sql);
    if (!r) return r.error();
    return {};
}

Result<void> Conn::commit() {
    auto r = exec("COMMIT");
    tx_open_ = false;
    if (!r) return r.error();
    // An aborted transaction's COMMIT "succeeds" with the tag ROLLBACK: nothing was stored.
    auto* res = r->get();
    if (std::strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        spdlog::error("store: PostgreSQL rolled the transaction back instead of committing it");
        return common::Errc::storage_error;
    }
    return {};
}

void Conn::rollback() {
    tx_open_ = false;
    if (c_ && PQstatus(c_) == CONNECTION_OK && PQtransactionStatus(c_) != PQTRANS_IDLE) {
        PQclear(PQexec(c_, "ROLLBACK"));
    }
}

// ---- Tx ----

Result<Tx> Tx::begin(Conn& c, const char* sql) {
    if (auto r = c.begin(sql); !r) return r.error();
    return Tx(c);
}

Tx::~Tx() {
    if (c_) c_->rollback();
}

Result<void> Tx::commit() {
    Conn* c = c_;
    c_ = nullptr;
    return c->commit();
}

}  // namespace mailward::store::postgres
