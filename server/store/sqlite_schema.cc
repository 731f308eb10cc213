#include "server/store/sqlite_schema.h"

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"

namespace elexirion::store::sqlite {
namespace {

// Times are INTEGER unix microseconds; "empty" optional keys (request_id, job_id, record_id)
// are NULL so partial unique indexes skip them. Blobs are opaque caller payloads.
constexpr absl::string_view kSchemaV1 = R"sql(
CREATE TABLE jobs (
  seq              INTEGER PRIMARY KEY,
  id               TEXT    NOT NULL UNIQUE,
  request_id       TEXT,
  program_name     TEXT    NOT NULL,
  optimizer        TEXT    NOT NULL,
  state            TEXT    NOT NULL
                   CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  request          BLOB    NOT NULL,
  result           BLOB    NOT NULL,
  progress         BLOB    NOT NULL,
  checkpoint       BLOB    NOT NULL,
  end_reason       TEXT    NOT NULL,
  error            TEXT    NOT NULL,
  attempt          INTEGER NOT NULL,
  lease_owner      TEXT    NOT NULL,
  lease_expires_at INTEGER,
  cancel_requested INTEGER NOT NULL,
  run_after        INTEGER NOT NULL,
  created_at       INTEGER NOT NULL,
  started_at       INTEGER,
  ended_at         INTEGER,
  last_event_seq   INTEGER NOT NULL
);
CREATE UNIQUE INDEX jobs_by_request_id ON jobs (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX jobs_by_created ON jobs (created_at, id);
-- Claims walk it in (created_at, id) order within 'queued' / 'running' and stop at the first
-- runnable row; also lists and counts by state.
CREATE INDEX jobs_by_state ON jobs (state, created_at, id);
CREATE INDEX jobs_by_program ON jobs (program_name, created_at, id);
CREATE INDEX jobs_by_ended ON jobs (ended_at) WHERE ended_at IS NOT NULL;

CREATE TABLE job_events (
  job_id  TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  seq     INTEGER NOT NULL,
  kind    TEXT    NOT NULL,
  payload BLOB    NOT NULL,
  time    INTEGER NOT NULL,
  PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;

CREATE TABLE programs (
  name           TEXT    NOT NULL,
  version        INTEGER NOT NULL,
  pipeline_name  TEXT    NOT NULL,
  job_id         TEXT,
  optimizer      TEXT    NOT NULL,
  dspy_json      TEXT    NOT NULL,
  optimized_yaml TEXT    NOT NULL,
  scores_json    TEXT    NOT NULL,
  production     INTEGER NOT NULL,
  created_at     INTEGER NOT NULL,
  PRIMARY KEY (name, version)
);
CREATE UNIQUE INDEX programs_one_production ON programs (name) WHERE production = 1;
CREATE UNIQUE INDEX programs_by_job ON programs (name, job_id) WHERE job_id IS NOT NULL;
CREATE INDEX programs_by_created ON programs (created_at, name);

CREATE TABLE pipelines (
  name       TEXT    PRIMARY KEY,
  yaml       TEXT    NOT NULL,
  revision   INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE datasets (
  name          TEXT    PRIMARY KEY,
  pipeline_name TEXT    NOT NULL,
  created_at    INTEGER NOT NULL,
  example_count INTEGER NOT NULL
);

CREATE TABLE examples (
  seq                  INTEGER PRIMARY KEY,  -- insertion order: "oldest first" listing
  dataset              TEXT    NOT NULL REFERENCES datasets (name) ON DELETE CASCADE,
  id                   TEXT    NOT NULL,
  input_json           TEXT    NOT NULL,
  expected_output_json TEXT    NOT NULL,
  metadata_json        TEXT    NOT NULL,
  content_hash         TEXT    NOT NULL,
  created_at           INTEGER NOT NULL,
  UNIQUE (dataset, id),
  UNIQUE (dataset, content_hash)
);
CREATE INDEX examples_by_dataset ON examples (dataset, seq);
CREATE INDEX examples_by_created ON examples (dataset, created_at);

CREATE TABLE executions (
  seq              INTEGER PRIMARY KEY,
  id               TEXT    NOT NULL UNIQUE,
  record_id        TEXT,
  pipeline_name    TEXT    NOT NULL,
  program_version  INTEGER NOT NULL,
  success          INTEGER NOT NULL,
  duration_seconds REAL    NOT NULL,
  quality_score    REAL    NOT NULL,
  input_json       TEXT    NOT NULL,
  output_json      TEXT    NOT NULL,
  metadata_json    TEXT    NOT NULL,
  time             INTEGER NOT NULL
);
CREATE UNIQUE INDEX executions_by_record_id ON executions (pipeline_name, record_id)
  WHERE record_id IS NOT NULL;
CREATE INDEX executions_by_pipeline_time ON executions (pipeline_name, time);
CREATE INDEX executions_by_time ON executions (time);

CREATE TABLE llm_cache (
  key           TEXT    PRIMARY KEY,
  response_json TEXT    NOT NULL,
  created_at    INTEGER NOT NULL
);
CREATE INDEX llm_cache_by_created ON llm_cache (created_at);

CREATE TABLE schedule_slots (
  schedule_name TEXT    NOT NULL,
  slot_key      TEXT    NOT NULL,
  owner         TEXT    NOT NULL,
  claimed_at    INTEGER NOT NULL,
  PRIMARY KEY (schedule_name, slot_key)
) WITHOUT ROWID;
)sql";

// Continuous learning: what a schedule slot's winner did, and "when was this pipeline last
// optimized" without scanning every program.
constexpr absl::string_view kSchemaV2 = R"sql(
ALTER TABLE schedule_slots ADD COLUMN outcome TEXT NOT NULL DEFAULT '';
CREATE INDEX programs_by_pipeline ON programs (pipeline_name, created_at);
CREATE TABLE pipeline_baselines (
  pipeline_name TEXT    PRIMARY KEY,
  success_rate  REAL    NOT NULL,
  mean_quality  REAL    NOT NULL,
  executions    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);
)sql";

constexpr absl::string_view kCreateMigrationsTable = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version     INTEGER PRIMARY KEY,
  description TEXT    NOT NULL,
  applied_at  INTEGER NOT NULL
);
)sql";

}  // namespace

const std::vector<Migration>& SchemaMigrations() {
  static const auto* migrations = new std::vector<Migration>{
      {1,
       "initial schema: jobs, events, programs, pipelines, datasets, executions, cache, "
       "schedules",
       kSchemaV1},
      {2, "schedule slot outcomes; programs by pipeline; pipeline baselines", kSchemaV2},
  };
  return *migrations;
}

absl::StatusOr<int> SchemaVersion(Connection& db) {
  ASSIGN_OR_RETURN(Stmt exists, db.Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                           "name = 'schema_migrations'"));
  ASSIGN_OR_RETURN(bool has_table, exists.Step());
  if (!has_table) return 0;
  ASSIGN_OR_RETURN(Stmt stmt,
                   db.Prepare("SELECT coalesce(max(version), 0) FROM schema_migrations"));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? static_cast<int>(stmt.ColumnInt(0)) : 0;
}

absl::Status Migrate(Connection& db, const std::vector<Migration>& migrations, absl::Time now) {
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1) {
      return absl::InternalError("schema migrations must be numbered 1, 2, 3, ...");
    }
  }
  const int known = static_cast<int>(migrations.size());
  auto check_not_newer = [&](int current) -> absl::Status {
    if (current <= known) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(
        "database ", db.path(), " has schema version ", current,
        ", newer than the newest this binary knows (", known,
        "); it was written by a newer elexirion: upgrade this binary or use another database"));
  };
  // Fast path without the write lock: nothing to do for an up-to-date database.
  ASSIGN_OR_RETURN(int current, SchemaVersion(db));
  RETURN_IF_ERROR(check_not_newer(current));
  for (const Migration& m : migrations) {
    if (m.version <= current) continue;
    RETURN_IF_ERROR(db.WriteTransaction([&]() -> absl::Status {
      RETURN_IF_ERROR(db.Exec(kCreateMigrationsTable));
      // Re-read under the write lock: another process may have migrated meanwhile.
      ASSIGN_OR_RETURN(current, SchemaVersion(db));
      RETURN_IF_ERROR(check_not_newer(current));
      if (current >= m.version) return absl::OkStatus();
      if (current != m.version - 1) {
        return absl::InternalError(
            absl::StrCat("schema version ", current, " cannot be migrated to ", m.version));
      }
      absl::Status applied = db.Exec(m.sql);
      if (!applied.ok()) {
        return absl::Status(applied.code(), absl::StrCat("schema migration ", m.version, " (",
                                                         m.description, "): ", applied.message()));
      }
      ASSIGN_OR_RETURN(Stmt record,
                       db.Prepare("INSERT INTO schema_migrations (version, description, "
                                  "applied_at) VALUES (?1, ?2, ?3)"));
      record.BindInt(1, m.version).BindText(2, m.description).BindTime(3, now);
      RETURN_IF_ERROR(record.Run());
      current = m.version;
      return absl::OkStatus();
    }));
  }
  return absl::OkStatus();
}

}  // namespace elexirion::store::sqlite
