// UserStore over PostgreSQL (the users table) on the shared connection. Uniqueness is the primary
// key's job: add() inserts and maps unique_violation to already_exists, so two nodes adding one name
// at once cannot both succeed. Password hashes are stored as given, never logged. Names are listed
// in byte order (COLLATE "C"), as SQLite's binary collation lists them, whatever the database locale.
#include "store/postgres/internal.hpp"

namespace mailward::store::postgres {
namespace {

constexpr const char* kSelect =
    "SELECT name, password_hash, mode, created, senders, allow_tls_optional, receipts FROM users";

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

User read_user(const Rows& r, int i) {
    User u;
    u.name = r.text(i, 0);
    u.password_hash = r.text(i, 1);
    u.mode = r.text(i, 2);
    u.created = from_ms(r.int64(i, 3));
    u.senders = split(r.text(i, 4));
    u.allow_tls_optional = r.boolean(i, 5);
    u.receipts = r.boolean(i, 6);
    return u;
}

}  // namespace

Result<void> PgUserStore::add(const User& u) {
    if (u.name.empty()) return common::Errc::invalid_argument;
    const TimePoint created = u.created == TimePoint{} ? Clock::now() : u.created;
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec(
        "INSERT INTO users (name, password_hash, mode, created, senders, allow_tls_optional, receipts)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        Params()
            .text(u.name)
            .text(u.password_hash)
            .text(u.mode)
            .int64(to_ms(created))
            .text(join(u.senders))
            .boolean(u.allow_tls_optional)
            .boolean(u.receipts));
    if (!r) return r.error();  // a taken name comes back as already_exists
    return {};
}

// Changes the password hash, the mode, the senders, allow_tls_optional and receipts; name and
// created stay.
Result<void> PgUserStore::update(const User& u) {
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec(
        "UPDATE users SET password_hash = $2, mode = $3, senders = $4, allow_tls_optional = $5, receipts = $6"
        " WHERE name = $1",
        Params()
            .text(u.name)
            .text(u.password_hash)
            .text(u.mode)
            .text(join(u.senders))
            .boolean(u.allow_tls_optional)
            .boolean(u.receipts));
    if (!r) return r.error();
    if (r->affected() == 0) return common::Errc::not_found;
    return {};
}

Result<void> PgUserStore::remove(const std::string& name) {
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec("DELETE FROM users WHERE name = $1", Params().text(name));
    if (!r) return r.error();
    if (r->affected() == 0) return common::Errc::not_found;
    return {};
}

Result<User> PgUserStore::get(const std::string& name) {
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec((std::string(kSelect) + " WHERE name = $1").c_str(), Params().text(name));
    if (!r) return r.error();
    if (r->size() == 0) return common::Errc::not_found;
    return read_user(*r, 0);
}

Result<std::vector<User>> PgUserStore::list() {
    std::lock_guard lk(conn_.mu);
    auto r = conn_.conn.exec((std::string(kSelect) + " ORDER BY name COLLATE \"C\"").c_str());
    if (!r) return r.error();
    std::vector<User> out;
    for (int i = 0; i < r->size(); ++i) out.push_back(read_user(*r, i));
    return out;
}

}  // namespace mailward::store::postgres
