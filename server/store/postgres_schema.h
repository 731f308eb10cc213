// Versioned schema of the PostgreSQL store: an ordered list of migrations, each applied once
// in its own transaction (PostgreSQL DDL is transactional) and recorded in
// `schema_migrations`. Replicas starting together serialize on a transaction-level advisory
// lock, so exactly one applies each migration and the others see it applied.
//
// Rules for adding a migration: append (never edit a released one), next version number.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/store/postgres_connection.h"

namespace elexirion::store::pg {

struct Migration {
  int version;
  absl::string_view description;
  absl::string_view sql;
};

// The store's migrations, versions 1..N.
const std::vector<Migration>& SchemaMigrations();

// Highest applied version; 0 for a database without `schema_migrations`.
absl::StatusOr<int> SchemaVersion(Connection& conn);

// Applies the migrations newer than the database's version, in order. FAILED_PRECONDITION
// when the database has a version newer than the last of `migrations` (written by a newer
// binary). A failing migration is rolled back entirely and leaves the earlier ones applied.
absl::Status Migrate(Connection& conn, const std::vector<Migration>& migrations, absl::Time now);

}  // namespace elexirion::store::pg
