#include "server/store/postgres_examples.h"

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "pqxx/subtransaction"
#include "server/store/store_util.h"

namespace elexirion::store::pg {
namespace {

// The fast path: every pending entry by COPY, in a savepoint. Measured on bench-sized
// examples, COPY costs PostgreSQL about half the CPU per row of the INSERT ... SELECT FROM
// unnest(arrays) ON CONFLICT below (no array parsing, no speculative insertion). COPY cannot
// skip a row: a stored content_hash or a taken id fails it with a unique violation; then the
// savepoint is rolled back, nothing of the attempt remains, and the caller takes the INSERT
// path, which sorts the entries out one by one. True when every entry was inserted.
bool CopyExamples(Tx& tx, const std::string& dataset, const std::vector<NewExample>& batch,
                  const std::vector<size_t>& pending, std::vector<std::string>& ids,
                  absl::Time now) {
  static const std::vector<std::string> kColumns = {
      "dataset", "id", "input_json", "expected_output_json", "metadata_json", "content_hash",
      "created_at"};
  auto* outer = dynamic_cast<pqxx::dbtransaction*>(&tx.txn());
  if (outer == nullptr) return false;  // not in a transaction: no savepoint to fall back to
  try {
    pqxx::subtransaction savepoint(*outer, "copy_examples");
    {
      CopyIn copy(savepoint, "examples", kColumns);
      for (size_t i : pending) {
        const ExampleRecord& e = *batch[i].example;
        ids[i] = e.id.empty() ? NewStoreId(8) : e.id;
        std::string& row = copy.NewRow();
        AppendCopyField(dataset, row);
        row.push_back('\t');
        AppendCopyField(ids[i], row);
        row.push_back('\t');
        AppendCopyField(e.input_json, row);
        row.push_back('\t');
        AppendCopyField(e.expected_output_json, row);
        row.push_back('\t');
        AppendCopyField(e.metadata_json, row);
        row.push_back('\t');
        AppendCopyField(e.content_hash, row);
        absl::StrAppend(&row, "\t", Micros(e.created_at == kUnsetTime ? now : e.created_at));
      }
      copy.Complete();
    }
    savepoint.commit();
    return true;
  } catch (const pqxx::unique_violation&) {
    // The savepoint was rolled back; the INSERT path finds out which entries conflict.
    for (size_t i : pending) ids[i].clear();
    return false;
  }
}

}  // namespace

bool LockDataset(Tx& tx, const std::string& dataset) {
  return !tx.Exec("SELECT 1 FROM datasets WHERE name = $1 FOR NO KEY UPDATE", dataset).empty();
}

void RemoveLeftoverExamples(Tx& tx, const std::string& dataset) {
  tx.Exec("DELETE FROM examples WHERE dataset = $1", dataset);
}

absl::StatusOr<std::vector<std::string>> InsertExamples(Tx& tx, const std::string& dataset,
                                                        const std::vector<NewExample>& batch,
                                                        absl::Time now) {
  std::vector<std::string> ids(batch.size());
  // Later entries with a content_hash seen earlier in the batch are duplicates outright.
  std::vector<size_t> pending;
  {
    absl::flat_hash_set<std::string> hashes;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (hashes.insert(batch[i].example->content_hash).second) pending.push_back(i);
    }
  }
  // COPY in a savepoint takes four round trips to the one of the INSERT: it pays off only for
  // larger batches (group commits under load), not for the few examples of a small commit.
  constexpr size_t kMinCopyExamples = 16;
  if (pending.size() >= kMinCopyExamples && CopyExamples(tx, dataset, batch, pending, ids, now)) {
    tx.Exec("UPDATE datasets SET example_count = example_count + $2 WHERE name = $1", dataset,
            static_cast<int64_t>(pending.size()));
    return ids;
  }
  static const std::string kInsert =
      "INSERT INTO examples (dataset, id, input_json, expected_output_json, metadata_json, "
      "content_hash, created_at) SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], "
      "$5::text[], $6::text[], $7::bigint[]) ON CONFLICT DO NOTHING RETURNING id";
  int64_t inserted = 0;
  for (int round = 0; !pending.empty(); ++round) {
    if (round == 20) return absl::InternalError("cannot find a free example id");
    std::vector<std::optional<std::string>> id_col, input, expected, metadata, hash;
    std::vector<int64_t> created;
    absl::flat_hash_map<std::string, size_t> by_id;
    for (size_t i : pending) {
      const ExampleRecord& e = *batch[i].example;
      ids[i] = e.id.empty() ? NewStoreId(8) : e.id;
      by_id.emplace(ids[i], i);
      id_col.push_back(ids[i]);
      input.push_back(e.input_json);
      expected.push_back(e.expected_output_json);
      metadata.push_back(e.metadata_json);
      hash.push_back(e.content_hash);
      created.push_back(Micros(e.created_at == kUnsetTime ? now : e.created_at));
    }
    pqxx::result r =
        tx.Exec(kInsert, dataset, TextArray(id_col), TextArray(input), TextArray(expected),
                TextArray(metadata), TextArray(hash), Int64Array(created));
    absl::flat_hash_set<size_t> done;
    for (const auto& row : r) {
      auto it = by_id.find(Text(row[0]));
      if (it != by_id.end()) done.insert(it->second);
    }
    inserted += static_cast<int64_t>(r.size());
    if (done.size() == pending.size()) break;
    // Not inserted: a duplicate content_hash, or an id that is taken.
    std::vector<std::optional<std::string>> missing_hashes;
    for (size_t i : pending) {
      if (!done.contains(i)) missing_hashes.push_back(batch[i].example->content_hash);
    }
    absl::flat_hash_set<std::string> existing;
    for (const auto& row : tx.Exec("SELECT content_hash FROM examples WHERE dataset = $1 AND "
                                   "content_hash = ANY($2::text[])",
                                   dataset, TextArray(missing_hashes))) {
      existing.insert(Text(row[0]));
    }
    std::vector<size_t> retry;
    for (size_t i : pending) {
      if (done.contains(i)) continue;
      const ExampleRecord& e = *batch[i].example;
      if (existing.contains(e.content_hash)) {
        ids[i].clear();
      } else if (!e.id.empty()) {
        return absl::AlreadyExistsError(
            absl::StrCat(batch[i].where, " \"", e.id, "\" already exists in dataset ", dataset));
      } else {
        retry.push_back(i);  // a generated id collided: try another
      }
    }
    pending = std::move(retry);
  }
  if (inserted > 0) {
    tx.Exec("UPDATE datasets SET example_count = example_count + $2 WHERE name = $1", dataset,
            inserted);
  }
  return ids;
}

}  // namespace elexirion::store::pg
