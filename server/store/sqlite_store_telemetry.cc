// SqliteStore: execution records, the LLM response cache and schedule slots.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/store/sqlite_connection.h"
#include "server/store/sqlite_store.h"
#include "server/store/store_util.h"

namespace elexirion::store {

using sqlite::Connection;
using sqlite::Stmt;

namespace {

// Creates `dataset` for `pipeline_name` unless it exists.
absl::Status EnsureDataset(Connection& c, const std::string& dataset,
                           const std::string& pipeline_name, absl::Time now) {
  ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO datasets (name, pipeline_name, created_at, "
                                     "example_count) VALUES (?1, ?2, ?3, 0) "
                                     "ON CONFLICT (name) DO NOTHING"));
  s.BindText(1, dataset).BindText(2, pipeline_name).BindTime(3, now);
  return s.Run();
}

// Nearest-rank percentile of ascending `sorted` (non-empty).
double Percentile(const std::vector<double>& sorted, double p) {
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  if (rank == 0) rank = 1;
  return sorted[std::min(rank, sorted.size()) - 1];
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Executions

absl::StatusOr<std::vector<ExecutionInsertResult>> SqliteStore::InsertExecutions(
    const std::vector<ExecutionRecordRow>& rows) {
  const absl::Time now = Now();
  std::vector<ExecutionInsertResult> results;
  RETURN_IF_ERROR(Write([&](Connection& c) -> absl::Status {
    results.assign(rows.size(), ExecutionInsertResult());
    for (size_t i = 0; i < rows.size(); ++i) {
      const ExecutionRecordRow& r = rows[i];
      ExecutionInsertResult& out = results[i];
      if (r.pipeline_name.empty()) {
        out.status = absl::InvalidArgumentError("pipeline_name is empty");
        continue;
      }
      absl::Status inserted;
      // A generated id that happens to be taken is replaced (ON CONFLICT covers record_id
      // only, so ALREADY_EXISTS here is about `id`); a caller's id is rejected.
      for (int attempt = 0; attempt < 3; ++attempt) {
        out.id = r.id.empty() ? NewStoreId(16) : r.id;
        ASSIGN_OR_RETURN(Stmt s,
                         c.Prepare("INSERT INTO executions (id, record_id, pipeline_name, "
                                   "program_version, success, duration_seconds, quality_score, "
                                   "input_json, output_json, metadata_json, time) VALUES (?1, ?2, "
                                   "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT "
                                   "(pipeline_name, record_id) WHERE record_id IS NOT NULL "
                                   "DO NOTHING"));
        s.BindText(1, out.id)
            .BindTextOrNull(2, r.record_id)
            .BindText(3, r.pipeline_name)
            .BindInt(4, r.program_version)
            .BindInt(5, r.success ? 1 : 0)
            .BindDouble(6, r.duration_seconds)
            .BindDouble(7, r.quality_score)
            .BindText(8, r.input_json)
            .BindText(9, r.output_json)
            .BindText(10, r.metadata_json)
            .BindTime(11, r.time == kUnsetTime ? now : r.time);
        inserted = s.Run();
        if (!absl::IsAlreadyExists(inserted) || !r.id.empty()) break;
      }
      if (absl::IsInvalidArgument(inserted) || absl::IsAlreadyExists(inserted)) {
        // This row alone (too big, id taken): SQLite rolled back only the statement.
        out.status = inserted;
        out.id.clear();
        continue;
      }
      RETURN_IF_ERROR(inserted);
      const bool row_inserted = c.Changes() == 1;
      if (row_inserted && r.harvest.has_value()) {
        // A failure here fails the batch: the row and its example are stored together or not
        // at all.
        const std::string& dataset = r.harvest->dataset;
        if (dataset.empty()) return absl::InvalidArgumentError("harvest.dataset is empty");
        if (r.harvest->content_hash.empty()) {
          return absl::InvalidArgumentError("harvest.content_hash is empty");
        }
        RETURN_IF_ERROR(EnsureDataset(c, dataset, r.pipeline_name, now));
        ASSIGN_OR_RETURN(out.example_id, InsertExample(c, dataset, *r.harvest, now, "harvest.id"));
        if (!out.example_id.empty()) {
          ASSIGN_OR_RETURN(Stmt s, c.Prepare("UPDATE datasets SET example_count = "
                                             "example_count + 1 WHERE name = ?1"));
          s.BindText(1, dataset);
          RETURN_IF_ERROR(s.Run());
        }
      }
      if (!row_inserted) {
        ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT id FROM executions WHERE pipeline_name = ?1 "
                                           "AND record_id = ?2"));
        s.BindText(1, r.pipeline_name).BindText(2, r.record_id);
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) return absl::InternalError("duplicate execution row vanished");
        out.id = s.ColumnText(0);
        out.duplicate = true;
      }
    }
    return absl::OkStatus();
  }));
  return results;
}

absl::StatusOr<std::vector<ExecutionRecordRow>> SqliteStore::ListExecutions(
    const std::string& pipeline_name, absl::Time since, absl::Time until, int limit) {
  if (limit <= 0) limit = 1000;
  std::vector<ExecutionRecordRow> rows;
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s,
                     c.Prepare("SELECT id, record_id, pipeline_name, program_version, success, "
                               "duration_seconds, quality_score, input_json, output_json, "
                               "metadata_json, time FROM executions WHERE pipeline_name = ?1 AND "
                               "time >= ?2 AND time < ?3 ORDER BY time, seq LIMIT ?4"));
    s.BindText(1, pipeline_name).BindTime(2, since).BindTime(3, until).BindInt(4, limit);
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      ExecutionRecordRow r;
      r.id = s.ColumnText(0);
      r.record_id = s.ColumnText(1);
      r.pipeline_name = s.ColumnText(2);
      r.program_version = s.ColumnInt(3);
      r.success = s.ColumnInt(4) != 0;
      r.duration_seconds = s.ColumnDouble(5);
      r.quality_score = s.ColumnDouble(6);
      r.input_json = s.ColumnText(7);
      r.output_json = s.ColumnText(8);
      r.metadata_json = s.ColumnText(9);
      r.time = s.ColumnTime(10);
      rows.push_back(std::move(r));
    }
    return absl::OkStatus();
  }));
  return rows;
}

absl::StatusOr<int64_t> SqliteStore::PruneExecutions(absl::Time before, int limit) {
  if (limit <= 0) limit = 1000;
  int64_t deleted = 0;
  RETURN_IF_ERROR(Write([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("DELETE FROM executions WHERE seq IN (SELECT seq FROM "
                                       "executions WHERE time < ?1 LIMIT ?2)"));
    s.BindTime(1, before).BindInt(2, limit);
    RETURN_IF_ERROR(s.Run());
    deleted = c.Changes();
    return absl::OkStatus();
  }));
  return deleted;
}

absl::StatusOr<ExecutionSummary> SqliteStore::SummarizeExecutions(const std::string& pipeline_name,
                                                                  absl::Time since,
                                                                  absl::Time until) {
  ExecutionSummary summary;
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    summary = ExecutionSummary();
    // One pass over the window in duration order gives the counts and every percentile.
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT duration_seconds, success, quality_score FROM "
                                       "executions WHERE pipeline_name = ?1 AND time >= ?2 AND "
                                       "time < ?3 ORDER BY duration_seconds"));
    s.BindText(1, pipeline_name).BindTime(2, since).BindTime(3, until);
    std::vector<double> durations;
    double quality_sum = 0;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      durations.push_back(s.ColumnDouble(0));
      if (s.ColumnInt(1) != 0) ++summary.successes;
      quality_sum += s.ColumnDouble(2);
    }
    summary.executions = static_cast<int64_t>(durations.size());
    if (durations.empty()) return absl::OkStatus();
    summary.mean_quality = quality_sum / static_cast<double>(durations.size());
    summary.latency_p50_seconds = Percentile(durations, 0.50);
    summary.latency_p95_seconds = Percentile(durations, 0.95);
    summary.latency_p99_seconds = Percentile(durations, 0.99);
    return absl::OkStatus();
  }));
  return summary;
}

absl::Status SqliteStore::PutPipelineBaseline(const PipelineBaselineRecord& baseline) {
  if (baseline.pipeline_name.empty()) return absl::InvalidArgumentError("pipeline_name is empty");
  const absl::Time now = Now();
  return Write([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO pipeline_baselines (pipeline_name, "
                                       "success_rate, mean_quality, executions, updated_at) "
                                       "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (pipeline_name) "
                                       "DO UPDATE SET success_rate = excluded.success_rate, "
                                       "mean_quality = excluded.mean_quality, "
                                       "executions = excluded.executions, "
                                       "updated_at = excluded.updated_at"));
    s.BindText(1, baseline.pipeline_name)
        .BindDouble(2, baseline.success_rate)
        .BindDouble(3, baseline.mean_quality)
        .BindInt(4, baseline.executions)
        .BindTime(5, baseline.updated_at == kUnsetTime ? now : baseline.updated_at);
    return s.Run();
  });
}

absl::StatusOr<PipelineBaselineRecord> SqliteStore::GetPipelineBaseline(
    const std::string& pipeline_name) {
  std::optional<PipelineBaselineRecord> out;
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT success_rate, mean_quality, executions, "
                                       "updated_at FROM pipeline_baselines WHERE "
                                       "pipeline_name = ?1"));
    s.BindText(1, pipeline_name);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return absl::OkStatus();
    out = PipelineBaselineRecord{pipeline_name, s.ColumnDouble(0), s.ColumnDouble(1),
                                 s.ColumnInt(2), s.ColumnTime(3)};
    return absl::OkStatus();
  }));
  if (!out.has_value()) {
    return absl::NotFoundError(absl::StrCat("pipeline ", pipeline_name, " has no baseline"));
  }
  return *std::move(out);
}

// ---------------------------------------------------------------------------------------
// LLM cache

absl::StatusOr<std::optional<std::string>> SqliteStore::GetCachedLlmResponse(
    const std::string& key) {
  std::optional<std::string> out;
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT response_json FROM llm_cache WHERE key = ?1"));
    s.BindText(1, key);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) out = s.ColumnText(0);
    return absl::OkStatus();
  }));
  return out;
}

absl::Status SqliteStore::PutCachedLlmResponse(const std::string& key,
                                               const std::string& response_json) {
  if (key.empty()) return absl::InvalidArgumentError("key is empty");
  const absl::Time now = Now();
  return Write([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO llm_cache (key, response_json, created_at) "
                                       "VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET "
                                       "response_json = excluded.response_json, "
                                       "created_at = excluded.created_at"));
    s.BindText(1, key).BindText(2, response_json).BindTime(3, now);
    return s.Run();
  });
}

absl::StatusOr<int64_t> SqliteStore::PruneLlmCache(absl::Time before, int limit) {
  if (limit <= 0) limit = 1000;
  int64_t deleted = 0;
  RETURN_IF_ERROR(Write([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("DELETE FROM llm_cache WHERE rowid IN (SELECT rowid "
                                       "FROM llm_cache WHERE created_at < ?1 LIMIT ?2)"));
    s.BindTime(1, before).BindInt(2, limit);
    RETURN_IF_ERROR(s.Run());
    deleted = c.Changes();
    return absl::OkStatus();
  }));
  return deleted;
}

// ---------------------------------------------------------------------------------------
// Schedules

absl::StatusOr<bool> SqliteStore::TryClaimScheduleSlot(const std::string& schedule_name,
                                                       const std::string& slot_key,
                                                       const std::string& owner,
                                                       const std::string& outcome, absl::Time now) {
  if (schedule_name.empty()) return absl::InvalidArgumentError("schedule_name is empty");
  if (slot_key.empty()) return absl::InvalidArgumentError("slot_key is empty");
  bool claimed = false;
  RETURN_IF_ERROR(Write([&](Connection& c) -> absl::Status {
    {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO schedule_slots (schedule_name, slot_key, "
                                         "owner, claimed_at, outcome) VALUES (?1, ?2, ?3, ?4, "
                                         "?5) ON CONFLICT DO NOTHING"));
      s.BindText(1, schedule_name)
          .BindText(2, slot_key)
          .BindText(3, owner)
          .BindTime(4, now)
          .BindText(5, outcome);
      RETURN_IF_ERROR(s.Run());
    }
    claimed = c.Changes() == 1;
    return absl::OkStatus();
  }));
  return claimed;
}

absl::StatusOr<std::optional<ScheduleSlotRecord>> SqliteStore::GetScheduleSlot(
    const std::string& schedule_name, const std::string& slot_key) {
  std::optional<ScheduleSlotRecord> out;
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT owner, outcome, claimed_at FROM schedule_slots "
                                       "WHERE schedule_name = ?1 AND slot_key = ?2"));
    s.BindText(1, schedule_name).BindText(2, slot_key);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return absl::OkStatus();
    out = ScheduleSlotRecord{schedule_name, slot_key, s.ColumnText(0), s.ColumnText(1),
                             s.ColumnTime(2)};
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace elexirion::store
