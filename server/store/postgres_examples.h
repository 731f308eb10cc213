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

// Locks the row of `dataset` for the rest of the caller's transaction (FOR NO KEY UPDATE: the
// lock example_count's update takes anyway). Since schema 3 there is no foreign key from
// examples to datasets: this lock is what keeps a concurrent DeleteDataset from missing the
// examples being written. False when the dataset does not exist (or was just deleted).
bool LockDataset(Tx& tx, const std::string& dataset);

// Removes examples that name `dataset` while it did not exist: the caller has just created
// it (and holds its new row). Since schema 3 no foreign key prevents such leftovers; a
// schema-2 replica harvesting during a rolling upgrade can leave some behind, and a new
// dataset must not adopt them.
void RemoveLeftoverExamples(Tx& tx, const std::string& dataset);

// Inserts `batch` into `dataset` (locked by LockDataset) within the caller's transaction, in
// order, and adds the number inserted to the dataset's example_count. Returns per entry the
// example's id, or "" when the dataset (or an earlier entry) already holds its content_hash.
// Generated ids (8 hex chars) that collide are replaced; a caller-chosen id that is taken is
// ALREADY_EXISTS naming `where`.
absl::StatusOr<std::vector<std::string>> InsertExamples(Tx& tx, const std::string& dataset,
                                                        const std::vector<NewExample>& batch,
                                                        absl::Time now);

}  // namespace elexirion::store::pg
