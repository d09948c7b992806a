// UserStore over SQLite (the users table) on the shared connection. Uniqueness is the primary
// key's job: add() inserts and maps the constraint error to already_exists, so two concurrent adds
// of one name cannot both succeed. Password hashes are stored as given, never logged.
#include <spdlog/spdlog.h>

#include "store/sqlite/internal.hpp"

namespace mailward::store::sqlite {
namespace {

constexpr const char* kColumns = "name, password_hash, mode, created, senders, allow_tls_optional, receipts";

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) {
        if (!out.empty()) out += '\n';
        out += s;
    }
    return out;
}

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < s.size()) {
        auto nl = s.find('\n', start);
        if (nl == std::string::npos) nl = s.size();
        if (nl > start) out.push_back(s.substr(start, nl - start));
        start = nl + 1;
    }
    return out;
}

User read_user(const Stmt& st) {
    User u;
    u.name = st.text(0);
    u.password_hash = st.text(1);
    u.mode = st.text(2);
    u.created = from_ms(st.int64(3));
    u.senders = split(st.text(4));
    u.allow_tls_optional = st.int64(5) != 0;
    u.receipts = st.int64(6) != 0;
    return u;
}

}  // namespace

Result<void> SqliteUserStore::add(const User& u) {
    if (u.name.empty()) return common::Errc::invalid_argument;
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(
        "INSERT INTO users (name, password_hash, mode, created, senders, allow_tls_optional, receipts) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (!st) return st.error();
    TimePoint created = u.created == TimePoint{} ? Clock::now() : u.created;
    const std::string senders = join(u.senders);  // bound without a copy: must outlive run()
    st->bind(1, u.name).bind(2, u.password_hash).bind(3, u.mode).bind(4, to_ms(created));
    st->bind(5, senders).bind(6, static_cast<std::int64_t>(u.allow_tls_optional ? 1 : 0));
    st->bind(7, static_cast<std::int64_t>(u.receipts ? 1 : 0));
    return st->run();  // a taken name comes back as already_exists
}

// Changes the password hash, the mode, the senders, allow_tls_optional and receipts; name and
// created stay.
Result<void> SqliteUserStore::update(const User& u) {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(
        "UPDATE users SET password_hash = ?2, mode = ?3, senders = ?4, allow_tls_optional = ?5, receipts = ?6"
        " WHERE name = ?1");
    if (!st) return st.error();
    const std::string senders = join(u.senders);  // bound without a copy: must outlive run()
    st->bind(1, u.name).bind(2, u.password_hash).bind(3, u.mode).bind(4, senders);
    st->bind(5, static_cast<std::int64_t>(u.allow_tls_optional ? 1 : 0));
    st->bind(6, static_cast<std::int64_t>(u.receipts ? 1 : 0));
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
    auto st = conn_.db.prepare(std::string("SELECT ") + kColumns + " FROM users WHERE name = ?1");
    if (!st) return st.error();
    st->bind(1, name);
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) return common::Errc::not_found;
    return read_user(*st);
}

Result<std::vector<User>> SqliteUserStore::list() {
    std::lock_guard lk(conn_.mu);
    auto st = conn_.db.prepare(std::string("SELECT ") + kColumns + " FROM users ORDER BY name");
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
