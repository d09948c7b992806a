// Versioned schema migrations for the embedded SQLite store. The schema version lives in
// PRAGMA user_version (transactional, in the file header); PRAGMA application_id marks the file as
// mailward's so that a foreign SQLite file is refused rather than written into.
#pragma once

#include <span>

#include "common/result.hpp"
#include "store/sqlite/db.hpp"

namespace mailward::store::sqlite {

struct Migration {
    int version;       // 1, 2, 3, ... with no gaps; the step takes the schema from version-1 to version
    const char* name;  // for logs
    const char* sql;   // one or more statements, run inside the migration's transaction
};

// 'MWLD': written into the file header by the first migration.
inline constexpr int kApplicationId = 0x4d574c44;

// The steps this build knows, in order.
std::span<const Migration> migrations();
int latest_schema_version();

// Puts the database in WAL mode and applies every step newer than its user_version, each in its own
// BEGIN IMMEDIATE transaction (so concurrent openers serialise and a crash leaves a whole step or
// none). Returns the resulting version. Errors: unsupported when the file is newer than this build
// (a downgrade), corrupt when the file belongs to another application.
Result<int> migrate(Db& db);
// The same with an explicit list of steps (tests use this to simulate an older or newer build).
Result<int> migrate(Db& db, std::span<const Migration> steps);

Result<int> schema_version(Db& db);

}  // namespace mailward::store::sqlite
