// The write limits of a store role (store.hpp, Role; docs/design.md "Process model"): an SQLite
// authorizer (sqlite3_set_authorizer) on each connection of a submission or portal process. It is
// consulted when a statement is prepared, for the statement itself and for every trigger and
// foreign-key action it would run: a write to a table the role may not write, any schema change,
// ATTACH/DETACH and any PRAGMA that sets a value are refused (the prepare fails with SQLITE_AUTH).
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstdint>

#include "store/sqlite/internal.hpp"

namespace mailward::store::sqlite {
namespace {

bool writable(Role role, const char* table) {
    if (!table) return false;
    const auto& allowed = writable_tables(role);
    return std::find(allowed.begin(), allowed.end(), std::string_view(table)) != allowed.end();
}

int authorize(void* user_data, int action, const char* arg1, const char* arg2, const char*, const char* trigger) {
    const auto role = static_cast<Role>(reinterpret_cast<std::intptr_t>(user_data));
    switch (action) {
        case SQLITE_SELECT:
        case SQLITE_READ:
        case SQLITE_TRANSACTION:
        case SQLITE_SAVEPOINT:
        case SQLITE_FUNCTION:
        case SQLITE_RECURSIVE: return SQLITE_OK;
        case SQLITE_PRAGMA:
            // Reading a pragma (PRAGMA user_version) is fine; setting one is not.
            if (arg2 == nullptr) return SQLITE_OK;
            spdlog::error("store: the {} process may not set PRAGMA {}", to_string(role), arg1 ? arg1 : "?");
            return SQLITE_DENY;
        case SQLITE_INSERT:
        case SQLITE_UPDATE:
        case SQLITE_DELETE:
            if (writable(role, arg1)) return SQLITE_OK;
            spdlog::error("store: the {} process may not write table {}{}{}", to_string(role), arg1 ? arg1 : "?",
                          trigger ? " (trigger " : "", trigger ? std::string(trigger) + ")" : std::string());
            return SQLITE_DENY;
        default:
            // Schema changes, ATTACH, DETACH, REINDEX, ANALYZE, virtual tables.
            spdlog::error("store: the {} process may not change the schema (authorizer action {})", to_string(role),
                          action);
            return SQLITE_DENY;
    }
}

}  // namespace

Result<void> restrict_writes(Db& db, Role role) {
    if (role == Role::main) return {};
    void* data = reinterpret_cast<void*>(static_cast<std::intptr_t>(role));
    if (int rc = sqlite3_set_authorizer(db.handle(), authorize, data); rc != SQLITE_OK)
        return db.fail(rc, "set_authorizer");
    return {};
}

}  // namespace mailward::store::sqlite
