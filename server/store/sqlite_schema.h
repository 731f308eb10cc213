// Versioned schema of the SQLite store: an ordered list of migrations, each applied once in
// its own BEGIN IMMEDIATE transaction and recorded in `schema_migrations`.
//
// Rules for adding a migration: append (never edit a released one), next version number,
// idempotence is not needed (the version check runs inside the same transaction).
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/store/sqlite_connection.h"

namespace elexirion::store::sqlite {

struct Migration {
  int version;
  absl::string_view description;
  absl::string_view sql;
};

// The store's migrations, versions 1..N.
const std::vector<Migration>& SchemaMigrations();

// Highest applied version; 0 for a database without `schema_migrations`.
absl::StatusOr<int> SchemaVersion(Connection& db);

// Applies the migrations of `migrations` newer than the database's version, in order.
// FAILED_PRECONDITION when the database already has a version newer than the last of
// `migrations` (written by a newer binary: this one must not touch it). A failing migration
// is rolled back entirely and leaves the earlier ones applied.
absl::Status Migrate(Connection& db, const std::vector<Migration>& migrations, absl::Time now);

}  // namespace elexirion::store::sqlite
