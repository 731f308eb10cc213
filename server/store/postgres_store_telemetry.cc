// PostgresStore: execution records, baselines, the LLM response cache and schedule slots.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/common/status_macros.h"
#include "server/store/postgres_connection.h"
#include "server/store/postgres_examples.h"
#include "server/store/postgres_store.h"
#include "server/store/store_util.h"

namespace elexirion::store {
namespace {

using pg::Tx;

// Per-row rejection before anything is written: what PostgreSQL would refuse for the whole
// statement is refused for the row alone (as SQLite does).
absl::Status CheckRow(const ExecutionRecordRow& r) {
  if (r.pipeline_name.empty()) return absl::InvalidArgumentError("pipeline_name is empty");
  const std::pair<const char*, const std::string*> fields[] = {{"id", &r.id},
                                                               {"record_id", &r.record_id},
                                                               {"pipeline_name", &r.pipeline_name},
                                                               {"input_json", &r.input_json},
                                                               {"output_json", &r.output_json},
                                                               {"metadata_json", &r.metadata_json}};
  for (const auto& [name, value] : fields) {
    if (!pg::IsStorableText(*value)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " is not valid UTF-8 text (or holds a NUL byte)"));
    }
  }
  return absl::OkStatus();
}

// Writes the harvested examples of the rows just inserted (`inserted`: row indexes), grouped
// by dataset, creating missing datasets for the row's pipeline.
absl::Status HarvestExamples(Tx& tx, const std::vector<ExecutionRecordRow>& rows,
                             const std::vector<size_t>& inserted, absl::Time now,
                             std::vector<ExecutionInsertResult>& results) {
  std::vector<std::string> order;
  absl::flat_hash_map<std::string, std::vector<size_t>> by_dataset;
  for (size_t i : inserted) {
    if (!rows[i].harvest.has_value()) continue;
    const ExampleRecord& e = *rows[i].harvest;
    // A failure here fails the batch: a row and its example are stored together or not at all.
    if (e.dataset.empty()) return absl::InvalidArgumentError("harvest.dataset is empty");
    if (e.content_hash.empty()) return absl::InvalidArgumentError("harvest.content_hash is empty");
    auto [it, added] = by_dataset.try_emplace(e.dataset);
    if (added) order.push_back(e.dataset);
    it->second.push_back(i);
  }
  // Datasets are locked in name order: concurrent group commits harvesting into the same
  // datasets then queue instead of deadlocking (which PostgreSQL detects only after a second).
  std::sort(order.begin(), order.end());
  for (const std::string& dataset : order) {
    const std::vector<size_t>& members = by_dataset[dataset];
    // Creates the dataset or locks it, atomically (ON CONFLICT DO UPDATE never sees it
    // vanish in between): the lock LockDataset would take, at the cost of one row version.
    // xmax is 0 on a row version just inserted; the version DO UPDATE writes carries ours.
    const bool created =
        pg::Bool(tx.Exec("INSERT INTO datasets (name, pipeline_name, created_at, example_count) "
                         "VALUES ($1, $2, $3, 0) ON CONFLICT (name) DO UPDATE SET example_count "
                         "= datasets.example_count RETURNING xmax = 0",
                         dataset, rows[members.front()].pipeline_name, pg::Micros(now))[0][0]);
    if (created) pg::RemoveLeftoverExamples(tx, dataset);
    std::vector<pg::NewExample> batch;
    for (size_t i : members) batch.push_back({&*rows[i].harvest, "harvest.id"});
    ASSIGN_OR_RETURN(std::vector<std::string> ids, pg::InsertExamples(tx, dataset, batch, now));
    for (size_t k = 0; k < members.size(); ++k) results[members[k]].example_id = ids[k];
  }
  return absl::OkStatus();
}

// The rows of a batch that go to the database: their indexes (ascending) and ids.
struct PendingRows {
  std::vector<size_t> order;
  absl::flat_hash_map<std::string, size_t> by_id;
};

// Checks each row and gives it its id (results[i].status / .id); a row whose caller-chosen id
// repeats an earlier row's is rejected alone.
PendingRows PrepareRows(const std::vector<ExecutionRecordRow>& rows,
                        std::vector<ExecutionInsertResult>& results) {
  PendingRows pending;
  for (size_t i = 0; i < rows.size(); ++i) {
    const ExecutionRecordRow& r = rows[i];
    ExecutionInsertResult& out = results[i];
    out.status = CheckRow(r);
    if (!out.status.ok()) continue;
    if (!r.id.empty() && pending.by_id.contains(r.id)) {
      out.status = absl::AlreadyExistsError(absl::StrCat("execution id ", r.id, " is taken"));
      continue;
    }
    out.id = r.id.empty() ? NewStoreId(16) : r.id;
    pending.by_id.emplace(out.id, i);
    pending.order.push_back(i);
  }
  return pending;
}

// True when no two pending rows share a (pipeline_name, record_id): COPY cannot skip the later.
bool DistinctRecordKeys(const std::vector<ExecutionRecordRow>& rows, const PendingRows& pending) {
  absl::flat_hash_set<std::pair<absl::string_view, absl::string_view>> keys;
  for (size_t i : pending.order) {
    if (rows[i].record_id.empty()) continue;
    if (!keys.emplace(rows[i].pipeline_name, rows[i].record_id).second) return false;
  }
  return true;
}

// Group commit by COPY: measured, it costs PostgreSQL about a fifth less CPU per row than
// INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING RETURNING (no array parsing,
// no speculative insertion, no RETURNING). COPY cannot skip a conflicting row: a stored
// (pipeline_name, record_id) or a taken id fails it with a unique violation (ALREADY_EXISTS),
// and the caller then redoes the batch with InsertRows, which sorts the rows out one by one.
void CopyRows(Tx& tx, const std::vector<ExecutionRecordRow>& rows, const PendingRows& pending,
              const std::vector<ExecutionInsertResult>& results, absl::Time now) {
  static const std::vector<std::string> kColumns = {
      "id",          "record_id",        "pipeline_name", "program_version",
      "success",     "duration_seconds", "quality_score", "input_json",
      "output_json", "metadata_json",    "time"};
  pg::CopyIn copy(tx.txn(), "executions", kColumns);
  for (size_t i : pending.order) {
    const ExecutionRecordRow& r = rows[i];
    std::string& row = copy.NewRow();
    pg::AppendCopyField(results[i].id, row);
    row.push_back('\t');
    if (r.record_id.empty()) {
      row += "\\N";  // NULL
    } else {
      pg::AppendCopyField(r.record_id, row);
    }
    row.push_back('\t');
    pg::AppendCopyField(r.pipeline_name, row);
    // Numbers in the forms the INSERT path sends (exact doubles, NaN / Infinity).
    absl::StrAppend(&row, "\t", r.program_version, "\t", r.success ? "t" : "f", "\t",
                    pg::DoubleText(r.duration_seconds), "\t", pg::DoubleText(r.quality_score),
                    "\t");
    pg::AppendCopyField(r.input_json, row);
    row.push_back('\t');
    pg::AppendCopyField(r.output_json, row);
    row.push_back('\t');
    pg::AppendCopyField(r.metadata_json, row);
    absl::StrAppend(&row, "\t", pg::Micros(r.time == kUnsetTime ? now : r.time));
  }
  copy.Complete();
}

// Group commit that tolerates conflicts: the whole batch is one INSERT ... SELECT FROM
// unnest(arrays). ON CONFLICT DO NOTHING skips both a stored (pipeline_name, record_id) and a
// taken id; the rows skipped are then looked up by record_id: found = duplicate, else the id
// was taken (ALREADY_EXISTS for a caller's id; a generated one fails the batch with
// ALREADY_EXISTS so that it runs again with fresh ids). Returns the rows inserted (ascending).
absl::StatusOr<std::vector<size_t>> InsertRows(Tx& tx, const std::vector<ExecutionRecordRow>& rows,
                                               const PendingRows& pending,
                                               std::vector<ExecutionInsertResult>& results,
                                               absl::Time now) {
  static const std::string kInsert =
      "INSERT INTO executions (id, record_id, pipeline_name, program_version, success, "
      "duration_seconds, quality_score, input_json, output_json, metadata_json, time) "
      "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::boolean[], "
      "$6::float8[], $7::float8[], $8::text[], $9::text[], $10::text[], $11::bigint[]) "
      "ON CONFLICT DO NOTHING RETURNING id";
  std::vector<std::optional<std::string>> ids, record_ids, pipelines, inputs, outputs, metas;
  std::vector<int64_t> versions, times;
  std::vector<bool> successes;
  std::vector<double> durations, qualities;
  for (size_t i : pending.order) {
    const ExecutionRecordRow& r = rows[i];
    ids.push_back(results[i].id);
    record_ids.push_back(r.record_id.empty() ? std::nullopt
                                             : std::optional<std::string>(r.record_id));
    pipelines.push_back(r.pipeline_name);
    versions.push_back(r.program_version);
    successes.push_back(r.success);
    durations.push_back(r.duration_seconds);
    qualities.push_back(r.quality_score);
    inputs.push_back(r.input_json);
    outputs.push_back(r.output_json);
    metas.push_back(r.metadata_json);
    times.push_back(pg::Micros(r.time == kUnsetTime ? now : r.time));
  }
  pqxx::result r =
      tx.Exec(kInsert, pg::TextArray(ids), pg::TextArray(record_ids), pg::TextArray(pipelines),
              pg::Int64Array(versions), pg::BoolArray(successes), pg::DoubleArray(durations),
              pg::DoubleArray(qualities), pg::TextArray(inputs), pg::TextArray(outputs),
              pg::TextArray(metas), pg::Int64Array(times));
  std::vector<size_t> inserted;
  absl::flat_hash_set<size_t> inserted_set;
  for (const auto& row : r) {
    auto it = pending.by_id.find(pg::Text(row[0]));
    if (it == pending.by_id.end()) continue;
    inserted.push_back(it->second);
    inserted_set.insert(it->second);
  }
  std::sort(inserted.begin(), inserted.end());
  // The others are duplicates of a stored (or earlier in-batch) (pipeline_name, record_id),
  // or their id is taken.
  std::vector<std::optional<std::string>> dup_pipelines, dup_records;
  std::vector<size_t> dups;
  for (size_t i : pending.order) {
    if (inserted_set.contains(i)) continue;
    dups.push_back(i);
    dup_pipelines.push_back(rows[i].pipeline_name);
    dup_records.push_back(
        rows[i].record_id.empty() ? std::nullopt : std::optional<std::string>(rows[i].record_id));
  }
  if (dups.empty()) return inserted;
  absl::flat_hash_map<std::pair<std::string, std::string>, std::string> existing;
  for (const auto& row :
       tx.Exec("SELECT e.pipeline_name, e.record_id, e.id FROM executions e JOIN "
               "unnest($1::text[], $2::text[]) AS k(p, r) ON e.pipeline_name = k.p AND "
               "e.record_id = k.r",
               pg::TextArray(dup_pipelines), pg::TextArray(dup_records))) {
    existing[{pg::Text(row[0]), pg::Text(row[1])}] = pg::Text(row[2]);
  }
  for (size_t i : dups) {
    auto it = rows[i].record_id.empty() ? existing.end()
                                        : existing.find({rows[i].pipeline_name, rows[i].record_id});
    if (it != existing.end()) {
      results[i].id = it->second;
      results[i].duplicate = true;
    } else if (!rows[i].id.empty()) {
      results[i].status =
          absl::AlreadyExistsError(absl::StrCat("execution id ", rows[i].id, " is taken"));
      results[i].id.clear();
    } else {
      return absl::AlreadyExistsError("generated execution id collided");
    }
  }
  return inserted;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Executions

absl::StatusOr<std::vector<ExecutionInsertResult>> PostgresStore::InsertExecutions(
    const std::vector<ExecutionRecordRow>& rows) {
  const absl::Time now = Now();
  // The batch is one transaction: first by COPY (CopyRows); when that meets a conflict
  // (ALREADY_EXISTS), by InsertRows, which runs again (fresh ids) after a generated id collided.
  std::vector<ExecutionInsertResult> results;
  absl::Status status;
  bool copy = true;
  for (int attempt = 0; attempt < 4; ++attempt) {
    status = Write([&](Tx& tx) -> absl::Status {
      results.assign(rows.size(), ExecutionInsertResult());
      const PendingRows pending = PrepareRows(rows, results);
      if (pending.order.empty()) return absl::OkStatus();
      if (copy && DistinctRecordKeys(rows, pending)) {
        CopyRows(tx, rows, pending, results, now);
        return HarvestExamples(tx, rows, pending.order, now, results);
      }
      ASSIGN_OR_RETURN(std::vector<size_t> inserted, InsertRows(tx, rows, pending, results, now));
      return HarvestExamples(tx, rows, inserted, now, results);
    });
    if (!absl::IsAlreadyExists(status)) break;
    copy = false;
  }
  RETURN_IF_ERROR(status);
  return results;
}

absl::StatusOr<std::vector<ExecutionRecordRow>> PostgresStore::ListExecutions(
    const std::string& pipeline_name, absl::Time since, absl::Time until, int limit) {
  if (limit <= 0) limit = 1000;
  std::vector<ExecutionRecordRow> rows;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    rows.clear();
    pqxx::result r = tx.Exec(
        "SELECT id, record_id, pipeline_name, program_version, success, duration_seconds, "
        "quality_score, input_json, output_json, metadata_json, time FROM executions WHERE "
        "pipeline_name = $1 AND time >= $2 AND time < $3 ORDER BY time, seq LIMIT $4",
        pipeline_name, pg::Micros(since), pg::Micros(until), limit);
    for (const auto& row : r) {
      ExecutionRecordRow e;
      e.id = pg::Text(row[0]);
      e.record_id = pg::Text(row[1]);
      e.pipeline_name = pg::Text(row[2]);
      e.program_version = pg::Int(row[3]);
      e.success = pg::Bool(row[4]);
      e.duration_seconds = pg::Double(row[5]);
      e.quality_score = pg::Double(row[6]);
      e.input_json = pg::Text(row[7]);
      e.output_json = pg::Text(row[8]);
      e.metadata_json = pg::Text(row[9]);
      e.time = pg::TimeOf(row[10]);
      rows.push_back(std::move(e));
    }
    return absl::OkStatus();
  }));
  return rows;
}

absl::StatusOr<int64_t> PostgresStore::PruneExecutions(absl::Time before, int limit) {
  if (limit <= 0) limit = 1000;
  std::string cursor;
  {
    absl::MutexLock lock(&prune_mu_);
    cursor = prune_cursor_;
  }
  int64_t deleted = 0;
  std::string last;
  RETURN_IF_ERROR(WriteOne([&](Tx& tx) -> absl::Status {
    // There is no index on time alone (schema 3): the pipelines are found by a loose scan
    // of (pipeline_name, time), one index probe per pipeline, starting after the cursor and
    // wrapping around (round-robin across calls). Each pipeline's old rows come from a range
    // of the same index, oldest first (without the ORDER BY the planner picks a sequential
    // scan, which reads the whole table for a pipeline with few old rows).
    pqxx::result r = tx.Exec(
        "WITH RECURSIVE after_cursor(name) AS ("
        "  SELECT min(pipeline_name) FROM executions WHERE pipeline_name > $3"
        "  UNION ALL"
        "  SELECT (SELECT min(pipeline_name) FROM executions WHERE pipeline_name > a.name)"
        "  FROM after_cursor a WHERE a.name IS NOT NULL), "
        "up_to_cursor(name) AS ("
        "  SELECT min(pipeline_name) FROM executions"
        "  UNION ALL"
        "  SELECT (SELECT min(pipeline_name) FROM executions WHERE pipeline_name > u.name)"
        "  FROM up_to_cursor u WHERE u.name IS NOT NULL AND u.name < $3), "
        "walk(name, pass) AS ("
        "  SELECT name, 0 FROM after_cursor WHERE name IS NOT NULL"
        "  UNION ALL"
        "  SELECT name, 1 FROM up_to_cursor WHERE name IS NOT NULL AND name <= $3), "
        "gone AS ("
        "  DELETE FROM executions WHERE id IN ("
        "    SELECT old.id FROM (SELECT name, pass FROM walk ORDER BY pass, name) p"
        "    CROSS JOIN LATERAL ("
        "      SELECT id FROM executions WHERE pipeline_name = p.name AND time < $1"
        "      ORDER BY time LIMIT $2 FOR UPDATE SKIP LOCKED) old"
        "    LIMIT $2)"
        "  RETURNING pipeline_name) "
        "SELECT pipeline_name, count(*) FROM gone GROUP BY pipeline_name "
        "ORDER BY pipeline_name <= $3, pipeline_name",  // walk order: the last row is last
        pg::Micros(before), limit, cursor);
    deleted = 0;
    for (const auto& row : r) deleted += pg::Int(row[1]);
    last = r.empty() ? "" : pg::Text(r[r.size() - 1][0]);
    return absl::OkStatus();
  }));
  if (deleted >= limit && !last.empty()) {
    absl::MutexLock lock(&prune_mu_);
    prune_cursor_ = last;
  }
  return deleted;
}

absl::StatusOr<ExecutionSummary> PostgresStore::SummarizeExecutions(
    const std::string& pipeline_name, absl::Time since, absl::Time until) {
  ExecutionSummary summary;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    // percentile_disc(p) is the nearest-rank percentile: the first value whose cumulative
    // share reaches p.
    pqxx::result r = tx.Exec(
        "SELECT count(*), count(*) FILTER (WHERE success), coalesce(sum(quality_score), 0), "
        "percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_seconds), "
        "percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_seconds), "
        "percentile_disc(0.99) WITHIN GROUP (ORDER BY duration_seconds) "
        "FROM executions WHERE pipeline_name = $1 AND time >= $2 AND time < $3",
        pipeline_name, pg::Micros(since), pg::Micros(until));
    summary = ExecutionSummary();
    summary.executions = pg::Int(r[0][0]);
    if (summary.executions == 0) return absl::OkStatus();
    summary.successes = pg::Int(r[0][1]);
    summary.mean_quality = pg::Double(r[0][2]) / static_cast<double>(summary.executions);
    summary.latency_p50_seconds = pg::Double(r[0][3]);
    summary.latency_p95_seconds = pg::Double(r[0][4]);
    summary.latency_p99_seconds = pg::Double(r[0][5]);
    return absl::OkStatus();
  }));
  return summary;
}

absl::Status PostgresStore::PutPipelineBaseline(const PipelineBaselineRecord& baseline) {
  if (baseline.pipeline_name.empty()) return absl::InvalidArgumentError("pipeline_name is empty");
  const absl::Time updated = baseline.updated_at == kUnsetTime ? Now() : baseline.updated_at;
  return WriteOne([&](Tx& tx) -> absl::Status {
    tx.Exec(
        "INSERT INTO pipeline_baselines (pipeline_name, success_rate, mean_quality, "
        "executions, updated_at) VALUES ($1, $2::float8, $3::float8, $4, $5) ON CONFLICT "
        "(pipeline_name) DO UPDATE SET success_rate = excluded.success_rate, "
        "mean_quality = excluded.mean_quality, executions = excluded.executions, "
        "updated_at = excluded.updated_at",
        baseline.pipeline_name, pg::DoubleText(baseline.success_rate),
        pg::DoubleText(baseline.mean_quality), baseline.executions, pg::Micros(updated));
    return absl::OkStatus();
  });
}

absl::StatusOr<PipelineBaselineRecord> PostgresStore::GetPipelineBaseline(
    const std::string& pipeline_name) {
  std::optional<PipelineBaselineRecord> out;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    pqxx::result r = tx.Exec(
        "SELECT success_rate, mean_quality, executions, updated_at FROM pipeline_baselines "
        "WHERE pipeline_name = $1",
        pipeline_name);
    if (r.empty()) return absl::OkStatus();
    out = PipelineBaselineRecord{pipeline_name, pg::Double(r[0][0]), pg::Double(r[0][1]),
                                 pg::Int(r[0][2]), pg::TimeOf(r[0][3])};
    return absl::OkStatus();
  }));
  if (!out.has_value()) {
    return absl::NotFoundError(absl::StrCat("pipeline ", pipeline_name, " has no baseline"));
  }
  return *std::move(out);
}

// ---------------------------------------------------------------------------------------
// LLM cache (one table: every replica reads what any replica cached)

absl::StatusOr<std::optional<std::string>> PostgresStore::GetCachedLlmResponse(
    const std::string& key) {
  std::optional<std::string> out;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    pqxx::result r = tx.Exec("SELECT response_json FROM llm_cache WHERE key = $1", key);
    if (!r.empty()) out = pg::Text(r[0][0]);
    return absl::OkStatus();
  }));
  return out;
}

absl::Status PostgresStore::PutCachedLlmResponse(const std::string& key,
                                                 const std::string& response_json) {
  if (key.empty()) return absl::InvalidArgumentError("key is empty");
  const absl::Time now = Now();
  return WriteOne([&](Tx& tx) -> absl::Status {
    tx.Exec(
        "INSERT INTO llm_cache (key, response_json, created_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (key) DO UPDATE SET response_json = excluded.response_json, "
        "created_at = excluded.created_at",
        key, response_json, pg::Micros(now));
    return absl::OkStatus();
  });
}

absl::StatusOr<int64_t> PostgresStore::PruneLlmCache(absl::Time before, int limit) {
  if (limit <= 0) limit = 1000;
  int64_t deleted = 0;
  RETURN_IF_ERROR(WriteOne([&](Tx& tx) -> absl::Status {
    deleted = tx.Exec(
                    "DELETE FROM llm_cache WHERE key IN (SELECT key FROM llm_cache WHERE "
                    "created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
                    pg::Micros(before), limit)
                  .affected_rows();
    return absl::OkStatus();
  }));
  return deleted;
}

// ---------------------------------------------------------------------------------------
// Schedules

absl::StatusOr<bool> PostgresStore::TryClaimScheduleSlot(const std::string& schedule_name,
                                                         const std::string& slot_key,
                                                         const std::string& owner,
                                                         const std::string& outcome,
                                                         absl::Time now) {
  if (schedule_name.empty()) return absl::InvalidArgumentError("schedule_name is empty");
  if (slot_key.empty()) return absl::InvalidArgumentError("slot_key is empty");
  bool claimed = false;
  // The primary key decides: of concurrent inserts on any replica exactly one commits a row,
  // the others wait for it and then do nothing.
  RETURN_IF_ERROR(WriteOne([&](Tx& tx) -> absl::Status {
    claimed = tx.Exec(
                    "INSERT INTO schedule_slots (schedule_name, slot_key, owner, claimed_at, "
                    "outcome) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    schedule_name, slot_key, owner, pg::Micros(now), outcome)
                  .affected_rows() == 1;
    return absl::OkStatus();
  }));
  return claimed;
}

absl::StatusOr<std::optional<ScheduleSlotRecord>> PostgresStore::GetScheduleSlot(
    const std::string& schedule_name, const std::string& slot_key) {
  std::optional<ScheduleSlotRecord> out;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    pqxx::result r = tx.Exec(
        "SELECT owner, outcome, claimed_at FROM schedule_slots WHERE schedule_name = $1 AND "
        "slot_key = $2",
        schedule_name, slot_key);
    if (r.empty()) return absl::OkStatus();
    out = ScheduleSlotRecord{schedule_name, slot_key, pg::Text(r[0][0]), pg::Text(r[0][1]),
                             pg::TimeOf(r[0][2])};
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace elexirion::store
