// UserStore over SQLite (the users table) on the shared connection. Uniqueness is the primary
// key's job: add() inserts and maps the constraint error to already_exists, so two concurrent adds
// of one name cannot both succeed. Password hashes are stored as given, never logged.
#include <spdlog/spdlog.h>

#include "store/sqlite/internal.hpp"

namespace mailward::store::sqlite {
namespace {

User read_user(const Stmt& st) {
    User u;
    u.name = st.text(0);
    u.password_hash = st.text(1);
    u.mode = st.text(2);
    u.created = from_ms(st.int64(3));
    return u;
}

}  // namespace

Result<void> SqliteUserStore::add(const User& u) {
    if (u.name.empty()) return common::Errc::invalid_argument;
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(
        "INSERT INTO users (name, password_hash, mode, created) VALUES (?1, ?2, ?3, ?4)");
    if (!st) return st.error();
    TimePoint created = u.created == TimePoint{} ? Clock::now() : u.created;
    st->bind(1, u.name).bind(2, u.password_hash).bind(3, u.mode).bind(4, to_ms(created));
    return st->run();  // a taken name comes back as already_exists
}

// Changes the password hash and the mode; name and created stay.
Result<void> SqliteUserStore::update(const User& u) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare("UPDATE users SET password_hash = ?2, mode = ?3 WHERE name = ?1");
    if (!st) return st.error();
    st->bind(1, u.name).bind(2, u.password_hash).bind(3, u.mode);
    if (auto r = st->run(); !r) return r;
    if (conn_.db.changes() == 0) return common::Errc::not_found;
    return {};
}

Result<void> SqliteUserStore::remove(const std::string& name) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare("DELETE FROM users WHERE name = ?1");
    if (!st) return st.error();
    st->bind(1, name);
    if (auto r = st->run(); !r) return r;
    if (conn_.db.changes() == 0) return common::Errc::not_found;
    return {};
}

Result<User> SqliteUserStore::get(const std::string& name) {
    std::lock_guard lk(conn_.mu);
    auto st =
        conn_.db.prepare("SELECT name, password_hash, mode, created FROM users WHERE name = ?1");
    if (!st) return st.error();
    st->bind(1, name);
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) return common::Errc::not_found;
    return read_user(*st);
}

Result<std::vector<User>> SqliteUserStore::list() {
    std::lock_guard lk(conn_.mu);
    auto st =
        conn_.db.prepare("SELECT name, password_hash, mode, created FROM users ORDER BY name");
    if (!st) return st.error();
    std::vector<User> out;
    for (;;) {
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) break;
        out.push_back(read_user(*st));
    }
    return out;
}

}  // namespace mailward::store::sqlite
