// Batched example insertion shared by PostgresStore::AddExamples and the harvest of
// InsertExecutions: one multi-row INSERT per batch instead of one statement per example.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/store/postgres_connection.h"
#include "server/store/records.h"

namespace elexirion::store::pg {

struct NewExample {
  const ExampleRecord* example;
  // Names the example's id in an ALREADY_EXISTS error, e.g. "examples[3].id".
  std::string where;
};

// Inserts `batch` into `dataset` (which must exist) within the caller's transaction, in
// order, and adds the number inserted to the dataset's example_count. Returns per entry the
// example's id, or "" when the dataset (or an earlier entry) already holds its content_hash.
// Generated ids (8 hex chars) that collide are replaced; a caller-chosen id that is taken is
// ALREADY_EXISTS naming `where`.
absl::StatusOr<std::vector<std::string>> InsertExamples(Tx& tx, const std::string& dataset,
                                                        const std::vector<NewExample>& batch,
                                                        absl::Time now);

}  // namespace elexirion::store::pg
