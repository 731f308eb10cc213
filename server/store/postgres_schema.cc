#include "server/store/postgres_schema.h"

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"

namespace elexirion::store::pg {
namespace {

// Times are BIGINT unix microseconds (exact, like the SQLite store); "empty" optional keys
// (request_id, job_id, record_id) are NULL so partial unique indexes skip them. Opaque
// payloads are BYTEA; keys are COLLATE "C" so orderings and page tokens are byte-wise on every
// server, whatever its default collation. `seq` columns keep insertion order.
constexpr absl::string_view kSchemaV1 = R"sql(
CREATE TABLE jobs (
  id               TEXT COLLATE "C" PRIMARY KEY,
  request_id       TEXT COLLATE "C",
  program_name     TEXT COLLATE "C" NOT NULL,
  optimizer        TEXT    NOT NULL,
  state            TEXT    NOT NULL
                   CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  request          BYTEA   NOT NULL,
  result           BYTEA   NOT NULL,
  progress         BYTEA   NOT NULL,
  checkpoint       BYTEA   NOT NULL,
  end_reason       TEXT    NOT NULL,
  error            TEXT    NOT NULL,
  attempt          BIGINT  NOT NULL,
  lease_owner      TEXT    NOT NULL,
  lease_expires_at BIGINT,
  cancel_requested BOOLEAN NOT NULL,
  run_after        BIGINT  NOT NULL,
  created_at       BIGINT  NOT NULL,
  started_at       BIGINT,
  ended_at         BIGINT,
  last_event_seq   BIGINT  NOT NULL
);
CREATE UNIQUE INDEX jobs_by_request_id ON jobs (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX jobs_by_created ON jobs (created_at, id);
-- Claims walk it in (created_at, id) order within 'queued' / 'running'; also lists and counts
-- by state.
CREATE INDEX jobs_by_state ON jobs (state, created_at, id);
CREATE INDEX jobs_by_program ON jobs (program_name, created_at, id);
CREATE INDEX jobs_by_ended ON jobs (ended_at) WHERE ended_at IS NOT NULL;

CREATE TABLE job_events (
  job_id  TEXT COLLATE "C" NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  seq     BIGINT  NOT NULL,
  kind    TEXT    NOT NULL,
  payload BYTEA   NOT NULL,
  time    BIGINT  NOT NULL,
  PRIMARY KEY (job_id, seq)
);

CREATE TABLE programs (
  name           TEXT COLLATE "C" NOT NULL,
  version        BIGINT  NOT NULL,
  pipeline_name  TEXT COLLATE "C" NOT NULL,
  job_id         TEXT COLLATE "C",
  optimizer      TEXT    NOT NULL,
  dspy_json      TEXT    NOT NULL,
  optimized_yaml TEXT    NOT NULL,
  scores_json    TEXT    NOT NULL,
  production     BOOLEAN NOT NULL,
  created_at     BIGINT  NOT NULL,
  PRIMARY KEY (name, version)
);
CREATE UNIQUE INDEX programs_one_production ON programs (name) WHERE production;
CREATE UNIQUE INDEX programs_by_job ON programs (name, job_id) WHERE job_id IS NOT NULL;
CREATE INDEX programs_by_created ON programs (created_at, name);
CREATE INDEX programs_by_pipeline ON programs (pipeline_name, created_at);

CREATE TABLE pipelines (
  name       TEXT COLLATE "C" PRIMARY KEY,
  yaml       TEXT    NOT NULL,
  revision   BIGINT  NOT NULL,
  updated_at BIGINT  NOT NULL
);

CREATE TABLE datasets (
  name          TEXT COLLATE "C" PRIMARY KEY,
  pipeline_name TEXT COLLATE "C" NOT NULL,
  created_at    BIGINT  NOT NULL,
  example_count BIGINT  NOT NULL
);

CREATE TABLE examples (
  seq                  BIGSERIAL PRIMARY KEY,
  dataset              TEXT COLLATE "C" NOT NULL REFERENCES datasets (name) ON DELETE CASCADE,
  id                   TEXT COLLATE "C" NOT NULL,
  input_json           TEXT    NOT NULL,
  expected_output_json TEXT    NOT NULL,
  metadata_json        TEXT    NOT NULL,
  content_hash         TEXT COLLATE "C" NOT NULL,
  created_at           BIGINT  NOT NULL,
  UNIQUE (dataset, id),
  UNIQUE (dataset, content_hash)
);
CREATE INDEX examples_by_dataset ON examples (dataset, seq);
CREATE INDEX examples_by_created ON examples (dataset, created_at);

CREATE TABLE executions (
  seq              BIGSERIAL PRIMARY KEY,
  id               TEXT COLLATE "C" NOT NULL UNIQUE,
  record_id        TEXT COLLATE "C",
  pipeline_name    TEXT COLLATE "C" NOT NULL,
  program_version  BIGINT  NOT NULL,
  success          BOOLEAN NOT NULL,
  duration_seconds DOUBLE PRECISION NOT NULL,
  quality_score    DOUBLE PRECISION NOT NULL,
  input_json       TEXT    NOT NULL,
  output_json      TEXT    NOT NULL,
  metadata_json    TEXT    NOT NULL,
  time             BIGINT  NOT NULL
);
CREATE UNIQUE INDEX executions_by_record_id ON executions (pipeline_name, record_id)
  WHERE record_id IS NOT NULL;
CREATE INDEX executions_by_pipeline_time ON executions (pipeline_name, time);
CREATE INDEX executions_by_time ON executions (time);

CREATE TABLE llm_cache (
  key           TEXT COLLATE "C" PRIMARY KEY,
  response_json TEXT    NOT NULL,
  created_at    BIGINT  NOT NULL
);
CREATE INDEX llm_cache_by_created ON llm_cache (created_at);

CREATE TABLE schedule_slots (
  schedule_name TEXT COLLATE "C" NOT NULL,
  slot_key      TEXT COLLATE "C" NOT NULL,
  owner         TEXT    NOT NULL,
  outcome       TEXT    NOT NULL,
  claimed_at    BIGINT  NOT NULL,
  PRIMARY KEY (schedule_name, slot_key)
);

CREATE TABLE pipeline_baselines (
  pipeline_name TEXT COLLATE "C" PRIMARY KEY,
  success_rate  DOUBLE PRECISION NOT NULL,
  mean_quality  DOUBLE PRECISION NOT NULL,
  executions    BIGINT  NOT NULL,
  updated_at    BIGINT  NOT NULL
);
)sql";

// Executions are the one table written at tens of thousands of rows a second, and each
// btree on it costs PostgreSQL CPU on every row: the time-ordered id (unique already) becomes
// the primary key, and the separate seq key loses its index. The seq column itself stays,
// still filled, for one more release: replicas of schema 1 still running during a rolling
// upgrade order and prune by it (without the index their prune scans, but works). A BRIN
// index on time was measured faster still, but pruning reuses pages for new rows, which
// widens BRIN ranges until a prune reads most of the table: the btree on time stays. On a
// large table the primary key's index is built here, under the migration's lock.
constexpr absl::string_view kSchemaV2 = R"sql(
ALTER TABLE executions DROP CONSTRAINT executions_pkey;
ALTER TABLE executions DROP CONSTRAINT executions_id_key,
  ADD CONSTRAINT executions_pkey PRIMARY KEY (id);
)sql";

// Two more btree and trigger costs paid on every ingested row go:
// - examples: the foreign key to datasets ran one lookup per example row (a fifth of an
//   example's insert, measured). Writers now lock the dataset row once per batch (FOR NO KEY
//   UPDATE, which the example_count update takes anyway), and a delete trigger removes a
//   dataset's examples, for every binary: a schema-2 replica's DeleteDataset relied on the
//   cascade. The trigger's DELETE runs on a fresh snapshot after the dataset row's lock was
//   won, so it also sees examples a writer committed meanwhile. During a rolling upgrade a
//   schema-2 replica still harvests without that lock; a DeleteDataset that races with it
//   can leave examples behind. IntegrityCheck names them, and whoever creates a dataset of
//   that name again removes them first (they are never adopted into the new dataset).
// - examples: (dataset, seq) becomes the primary key and replaces the lone seq key plus the
//   (dataset, seq) index: one index fewer.
// - executions: the index on time alone served only retention pruning, which now walks
//   (pipeline_name, time) one pipeline at a time. A schema-2 replica's prune still works
//   during a rolling upgrade, by scanning.
//
// The three tables are locked up front, in the order schema-2 writers take them (executions,
// then datasets, then examples): taken one by one as the statements below need them, the
// locks formed cycles with replicas still writing, and PostgreSQL aborted the migration.
// The trigger names its table through TG_TABLE_SCHEMA, whatever the session's search_path.
constexpr absl::string_view kSchemaV3 = R"sql(
LOCK TABLE executions, datasets, examples IN ACCESS EXCLUSIVE MODE;
ALTER TABLE examples DROP CONSTRAINT examples_dataset_fkey;
CREATE FUNCTION elexirion_delete_dataset_examples() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('DELETE FROM %I.examples WHERE dataset = $1', TG_TABLE_SCHEMA) USING OLD.name;
  RETURN NULL;
END
$$;
CREATE TRIGGER datasets_delete_examples AFTER DELETE ON datasets
  FOR EACH ROW EXECUTE FUNCTION elexirion_delete_dataset_examples();
ALTER TABLE examples DROP CONSTRAINT examples_pkey,
  ADD CONSTRAINT examples_pkey PRIMARY KEY (dataset, seq);
DROP INDEX examples_by_dataset;
DROP INDEX executions_by_time;
)sql";

constexpr absl::string_view kCreateMigrationsTable = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version     INTEGER PRIMARY KEY,
  description TEXT    NOT NULL,
  applied_at  BIGINT  NOT NULL
)
)sql";

// Key of the advisory lock migrations hold ("elxmigr" in ASCII).
constexpr int64_t kMigrationLock = 0x656c786d696772;

absl::Status NewerSchema(int current, int known) {
  return absl::FailedPreconditionError(absl::StrCat(
      "PostgreSQL database has schema version ", current,
      ", newer than the newest this binary knows (", known,
      "); it was written by a newer elexirion: upgrade this binary or use another database"));
}

// Applies `m` in one transaction under the migration lock, unless another replica has
// meanwhile; `*current` becomes the version the database is at.
absl::Status ApplyMigration(Connection& conn, const Migration& m, int known, absl::Time now,
                            int* current) {
  try {
    pqxx::work txn(conn.raw());
    txn.exec(absl::StrCat("SELECT pg_advisory_xact_lock(", kMigrationLock, ")"));
    txn.exec(std::string(kCreateMigrationsTable));
    // Re-read under the lock: another replica may have migrated meanwhile.
    const int now_at =
        txn.exec("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0].as<int>();
    if (now_at > known) return NewerSchema(now_at, known);
    if (now_at >= m.version) {
      txn.commit();
      *current = now_at;
      return absl::OkStatus();
    }
    if (now_at != m.version - 1) {
      return absl::InternalError(
          absl::StrCat("schema version ", now_at, " cannot be migrated to ", m.version));
    }
    try {
      txn.exec(std::string(m.sql));
    } catch (const std::exception& e) {
      return PgErrorStatus(e,
                           absl::StrCat("schema migration ", m.version, " (", m.description, ")"));
    }
    txn.exec_params(
        "INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)",
        m.version, std::string(m.description), Micros(now));
    txn.commit();
    *current = m.version;
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return PgErrorStatus(e, absl::StrCat("schema migration ", m.version));
  }
}

}  // namespace

const std::vector<Migration>& SchemaMigrations() {
  static const auto* migrations = new std::vector<Migration>{
      {1,
       "initial schema: jobs, events, programs, pipelines, datasets, executions, cache, "
       "schedules, baselines",
       kSchemaV1},
      {2, "executions: id as the primary key, seq no longer indexed", kSchemaV2},
      {3,
       "examples: no per-row foreign key (dataset lock per batch, delete trigger), keyed by "
       "(dataset, seq); executions: no index on time alone",
       kSchemaV3},
  };
  return *migrations;
}

absl::StatusOr<int> SchemaVersion(Connection& conn) {
  try {
    pqxx::nontransaction txn(conn.raw());
    pqxx::result exists = txn.exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (!exists[0][0].as<bool>()) return 0;
    return txn.exec("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0].as<int>();
  } catch (const std::exception& e) {
    return PgErrorStatus(e, "reading the schema version");
  }
}

absl::Status Migrate(Connection& conn, const std::vector<Migration>& migrations, absl::Time now) {
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1) {
      return absl::InternalError("schema migrations must be numbered 1, 2, 3, ...");
    }
  }
  const int known = static_cast<int>(migrations.size());
  // Fast path without the lock: nothing to do for an up-to-date database.
  absl::StatusOr<int> current = SchemaVersion(conn);
  if (!current.ok()) return current.status();
  if (*current > known) return NewerSchema(*current, known);
  if (*current == known) return absl::OkStatus();
  for (const Migration& m : migrations) {
    if (m.version <= *current) continue;
    // A deadlock with the traffic of replicas still running (ABORTED) is tried again.
    absl::Status applied;
    for (int attempt = 0; attempt < 5; ++attempt) {
      applied = ApplyMigration(conn, m, known, now, &*current);
      if (!absl::IsAborted(applied)) break;
    }
    RETURN_IF_ERROR(applied);
  }
  return absl::OkStatus();
}

}  // namespace elexirion::store::pg
