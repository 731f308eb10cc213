// PostgresStore: programs, pipelines, datasets and examples.
#include <limits>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/store/postgres_connection.h"
#include "server/store/postgres_examples.h"
#include "server/store/postgres_store.h"
#include "server/store/store_util.h"

namespace elexirion::store {
namespace {

using pg::Tx;

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();

// ---- Programs

constexpr char kProgramColumns[] =
    "name, version, pipeline_name, job_id, optimizer, dspy_json, optimized_yaml, scores_json, "
    "production, created_at";

ProgramRecord ReadProgram(const pqxx::row& r) {
  ProgramRecord p;
  p.name = pg::Text(r[0]);
  p.version = pg::Int(r[1]);
  p.pipeline_name = pg::Text(r[2]);
  p.job_id = pg::Text(r[3]);
  p.optimizer = pg::Text(r[4]);
  p.dspy_json = pg::Text(r[5]);
  p.optimized_yaml = pg::Text(r[6]);
  p.scores_json = pg::Text(r[7]);
  p.production = pg::Bool(r[8]);
  p.created_at = pg::TimeOf(r[9]);
  return p;
}

std::optional<ProgramRecord> FirstProgram(const pqxx::result& r) {
  if (r.empty()) return std::nullopt;
  return ReadProgram(r[0]);
}

std::string ProgramQuery(absl::string_view where) {
  return absl::StrCat("SELECT ", kProgramColumns, " FROM programs WHERE ", where);
}

// Serializes version numbering and promotion of one program name across replicas (held until
// the transaction ends). Key: the name's hash in the "program" lock space.
void LockProgramName(Tx& tx, const std::string& name) {
  tx.Exec("SELECT pg_advisory_xact_lock(hashtext('elexirion.program'), hashtext($1))", name);
}

// ---- Pipelines and datasets

PipelineRecord ReadPipeline(const pqxx::row& r) {
  PipelineRecord p;
  p.name = pg::Text(r[0]);
  p.yaml = pg::Text(r[1]);
  p.revision = pg::Int(r[2]);
  p.updated_at = pg::TimeOf(r[3]);
  return p;
}

DatasetRecord ReadDataset(const pqxx::row& r) {
  DatasetRecord d;
  d.name = pg::Text(r[0]);
  d.pipeline_name = pg::Text(r[1]);
  d.created_at = pg::TimeOf(r[2]);
  d.example_count = pg::Int(r[3]);
  return d;
}

absl::Status DatasetNotFound(absl::string_view name) {
  return absl::NotFoundError(absl::StrCat("dataset ", name, " not found"));
}

bool DatasetExists(Tx& tx, const std::string& name) {
  return !tx.Exec("SELECT 1 FROM datasets WHERE name = $1", name).empty();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Programs

absl::StatusOr<ProgramRecord> PostgresStore::CreateProgramVersion(const ProgramRecord& program,
                                                                  bool* already_existed) {
  if (already_existed != nullptr) *already_existed = false;
  if (program.name.empty()) return absl::InvalidArgumentError("name is empty");
  ProgramRecord p = program;
  p.created_at = TruncateToMicros(p.created_at == kUnsetTime ? Now() : p.created_at);
  bool existed = false;
  static const std::string kInsert =
      absl::StrCat("INSERT INTO programs (", kProgramColumns,
                   ") VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6, $7, $8, $9, $10)");
  ProgramRecord out;
  RETURN_IF_ERROR(Write([&](Tx& tx) -> absl::Status {
    out = p;
    existed = false;
    LockProgramName(tx, out.name);
    if (!out.job_id.empty()) {
      std::optional<ProgramRecord> old =
          FirstProgram(tx.Exec(ProgramQuery("name = $1 AND job_id = $2"), out.name, out.job_id));
      if (old.has_value()) {
        out = *std::move(old);
        existed = true;
        return absl::OkStatus();
      }
    }
    out.version =
        pg::Int(tx.Exec("SELECT coalesce(max(version), 0) + 1 FROM programs WHERE "
                        "name = $1",
                        out.name)[0][0]);
    if (out.production) {
      tx.Exec("UPDATE programs SET production = false WHERE name = $1 AND production", out.name);
    }
    tx.Exec(kInsert, out.name, out.version, out.pipeline_name, out.job_id, out.optimizer,
            out.dspy_json, out.optimized_yaml, out.scores_json, out.production,
            pg::Micros(out.created_at));
    return absl::OkStatus();
  }));
  if (already_existed != nullptr) *already_existed = existed;
  return out;
}

absl::StatusOr<ProgramRecord> PostgresStore::GetProgram(const std::string& name, int64_t version) {
  std::optional<ProgramRecord> out;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    out = FirstProgram(tx.Exec(ProgramQuery("name = $1 AND version = $2"), name, version));
    return absl::OkStatus();
  }));
  if (!out.has_value()) {
    return absl::NotFoundError(absl::StrCat("program ", name, " version ", version, " not found"));
  }
  return *std::move(out);
}

absl::StatusOr<ProgramRecord> PostgresStore::GetLatestProgram(const std::string& name) {
  std::optional<ProgramRecord> out;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    out = FirstProgram(tx.Exec(ProgramQuery("name = $1 ORDER BY version DESC LIMIT 1"), name));
    return absl::OkStatus();
  }));
  if (!out.has_value()) return absl::NotFoundError(absl::StrCat("program ", name, " not found"));
  return *std::move(out);
}

absl::StatusOr<ProgramRecord> PostgresStore::GetLatestProgramForPipeline(
    const std::string& pipeline_name) {
  std::optional<ProgramRecord> out;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    out = FirstProgram(
        tx.Exec(ProgramQuery("pipeline_name = $1 ORDER BY created_at DESC, version DESC LIMIT 1"),
                pipeline_name));
    return absl::OkStatus();
  }));
  if (!out.has_value()) {
    return absl::NotFoundError(absl::StrCat("no program optimizes pipeline ", pipeline_name));
  }
  return *std::move(out);
}

absl::StatusOr<ProgramRecord> PostgresStore::GetProductionProgram(const std::string& name) {
  std::optional<ProgramRecord> out;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    out = FirstProgram(tx.Exec(ProgramQuery("name = $1 AND production"), name));
    return absl::OkStatus();
  }));
  if (!out.has_value()) {
    return absl::NotFoundError(absl::StrCat("program ", name, " has no production version"));
  }
  return *std::move(out);
}

absl::StatusOr<ProgramPage> PostgresStore::ListPrograms(const std::string& name, int page_size,
                                                        const std::string& page_token) {
  const int size = NormalizePageSize(page_size);
  const bool by_name = !name.empty();
  // With a name: versions, highest first (cursor: version). Without: newest version of each
  // name, newest first (cursor: created_at, name).
  const char* kind = by_name ? "programs/versions" : "programs/latest";
  int64_t cursor_int = kMaxInt;
  std::string cursor_name;
  if (!page_token.empty()) {
    ASSIGN_OR_RETURN(std::vector<std::string> keys,
                     DecodePageToken(page_token, kind, name, by_name ? 1 : 2));
    ASSIGN_OR_RETURN(cursor_int, PageTokenInt(keys[0]));
    if (!by_name) cursor_name = keys[1];
  }
  ProgramPage page;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    page.programs.clear();
    static const std::string kVersions =
        ProgramQuery("name = $1 AND version < $2 ORDER BY version DESC LIMIT $3");
    // The cursor name '' sorts before every name, so the first page starts below max.
    static const std::string kLatest =
        absl::StrCat("SELECT ", kProgramColumns,
                     " FROM programs p WHERE version = (SELECT max(version) FROM programs q WHERE "
                     "q.name = p.name) AND (created_at, name) < ($2, $1) "
                     "ORDER BY created_at DESC, name DESC LIMIT $3");
    pqxx::result r =
        tx.Exec(by_name ? kVersions : kLatest, by_name ? name : cursor_name, cursor_int, size + 1);
    for (const auto& row : r) page.programs.push_back(ReadProgram(row));
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.programs.size()) > size) {
    page.programs.resize(size);
    const ProgramRecord& last = page.programs.back();
    page.next_page_token =
        by_name ? EncodePageToken(kind, name, {absl::StrCat(last.version)})
                : EncodePageToken(kind, name,
                                  {absl::StrCat(absl::ToUnixMicros(last.created_at)), last.name});
  }
  return page;
}

absl::StatusOr<ProgramRecord> PostgresStore::PromoteProgram(const std::string& name,
                                                            int64_t version) {
  std::optional<ProgramRecord> out;
  RETURN_IF_ERROR(Write([&](Tx& tx) -> absl::Status {
    LockProgramName(tx, name);
    out = FirstProgram(tx.Exec(ProgramQuery("name = $1 AND version = $2"), name, version));
    if (!out.has_value()) {
      return absl::NotFoundError(
          absl::StrCat("program ", name, " version ", version, " not found"));
    }
    // Demote first: the partial unique index allows one production row per name.
    tx.Exec(
        "UPDATE programs SET production = false WHERE name = $1 AND production AND "
        "version <> $2",
        name, version);
    tx.Exec("UPDATE programs SET production = true WHERE name = $1 AND version = $2", name,
            version);
    out->production = true;
    return absl::OkStatus();
  }));
  return *std::move(out);
}

// ---------------------------------------------------------------------------------------
// Pipelines

absl::StatusOr<PipelineRecord> PostgresStore::UpsertPipeline(const PipelineRecord& pipeline) {
  if (pipeline.name.empty()) return absl::InvalidArgumentError("name is empty");
  const absl::Time updated =
      TruncateToMicros(pipeline.updated_at == kUnsetTime ? Now() : pipeline.updated_at);
  PipelineRecord out;
  RETURN_IF_ERROR(WriteOne([&](Tx& tx) -> absl::Status {
    pqxx::result r = tx.Exec(
        "INSERT INTO pipelines (name, yaml, revision, updated_at) VALUES ($1, $2, 1, $3) "
        "ON CONFLICT (name) DO UPDATE SET yaml = excluded.yaml, "
        "revision = pipelines.revision + 1, updated_at = excluded.updated_at "
        "RETURNING name, yaml, revision, updated_at",
        pipeline.name, pipeline.yaml, pg::Micros(updated));
    if (r.empty()) return absl::InternalError("upsert gave no row");
    out = ReadPipeline(r[0]);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<PipelineRecord> PostgresStore::GetPipeline(const std::string& name) {
  std::optional<PipelineRecord> out;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    pqxx::result r =
        tx.Exec("SELECT name, yaml, revision, updated_at FROM pipelines WHERE name = $1", name);
    if (!r.empty()) out = ReadPipeline(r[0]);
    return absl::OkStatus();
  }));
  if (!out.has_value()) return absl::NotFoundError(absl::StrCat("pipeline ", name, " not found"));
  return *std::move(out);
}

absl::StatusOr<PipelinePage> PostgresStore::ListPipelines(int page_size,
                                                          const std::string& page_token) {
  const int size = NormalizePageSize(page_size);
  std::string cursor;
  if (!page_token.empty()) {
    ASSIGN_OR_RETURN(std::vector<std::string> keys,
                     DecodePageToken(page_token, "pipelines", "", 1));
    cursor = keys[0];
  }
  PipelinePage page;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    page.pipelines.clear();
    pqxx::result r = tx.Exec(
        "SELECT name, yaml, revision, updated_at FROM pipelines WHERE name > $1 ORDER BY name "
        "LIMIT $2",
        cursor, size + 1);
    for (const auto& row : r) page.pipelines.push_back(ReadPipeline(row));
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.pipelines.size()) > size) {
    page.pipelines.resize(size);
    page.next_page_token = EncodePageToken("pipelines", "", {page.pipelines.back().name});
  }
  return page;
}

absl::Status PostgresStore::DeletePipeline(const std::string& name) {
  return WriteOne([&](Tx& tx) -> absl::Status {
    if (tx.Exec("DELETE FROM pipelines WHERE name = $1", name).affected_rows() == 0) {
      return absl::NotFoundError(absl::StrCat("pipeline ", name, " not found"));
    }
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------------------
// Datasets

absl::StatusOr<DatasetRecord> PostgresStore::CreateDataset(const DatasetRecord& dataset) {
  if (dataset.name.empty()) return absl::InvalidArgumentError("name is empty");
  DatasetRecord d = dataset;
  d.example_count = 0;
  d.created_at = TruncateToMicros(d.created_at == kUnsetTime ? Now() : d.created_at);
  // One transaction: nobody can add examples to the new row before the leftovers are gone.
  absl::Status status = Write([&](Tx& tx) -> absl::Status {
    tx.Exec(
        "INSERT INTO datasets (name, pipeline_name, created_at, example_count) VALUES ($1, "
        "$2, $3, 0)",
        d.name, d.pipeline_name, pg::Micros(d.created_at));
    pg::RemoveLeftoverExamples(tx, d.name);
    return absl::OkStatus();
  });
  if (absl::IsAlreadyExists(status)) {
    return absl::AlreadyExistsError(absl::StrCat("dataset ", d.name, " already exists"));
  }
  RETURN_IF_ERROR(status);
  return d;
}

absl::StatusOr<DatasetRecord> PostgresStore::GetDataset(const std::string& name) {
  std::optional<DatasetRecord> out;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    pqxx::result r = tx.Exec(
        "SELECT name, pipeline_name, created_at, example_count FROM datasets WHERE name = $1",
        name);
    if (!r.empty()) out = ReadDataset(r[0]);
    return absl::OkStatus();
  }));
  if (!out.has_value()) return DatasetNotFound(name);
  return *std::move(out);
}

absl::StatusOr<DatasetPage> PostgresStore::ListDatasets(int page_size,
                                                        const std::string& page_token) {
  const int size = NormalizePageSize(page_size);
  std::string cursor;
  if (!page_token.empty()) {
    ASSIGN_OR_RETURN(std::vector<std::string> keys, DecodePageToken(page_token, "datasets", "", 1));
    cursor = keys[0];
  }
  DatasetPage page;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    page.datasets.clear();
    pqxx::result r = tx.Exec(
        "SELECT name, pipeline_name, created_at, example_count FROM datasets WHERE name > $1 "
        "ORDER BY name LIMIT $2",
        cursor, size + 1);
    for (const auto& row : r) page.datasets.push_back(ReadDataset(row));
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.datasets.size()) > size) {
    page.datasets.resize(size);
    page.next_page_token = EncodePageToken("datasets", "", {page.datasets.back().name});
  }
  return page;
}

absl::Status PostgresStore::DeleteDataset(const std::string& name) {
  return WriteOne([&](Tx& tx) -> absl::Status {
    // Examples go with it (the datasets_delete_examples trigger).
    if (tx.Exec("DELETE FROM datasets WHERE name = $1", name).affected_rows() == 0) {
      return DatasetNotFound(name);
    }
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------------------
// Examples

absl::StatusOr<AddExamplesResult> PostgresStore::AddExamples(
    const std::string& dataset, const std::vector<ExampleRecord>& examples) {
  if (dataset.empty()) return absl::InvalidArgumentError("dataset is empty");
  std::vector<pg::NewExample> batch;
  for (size_t i = 0; i < examples.size(); ++i) {
    if (examples[i].content_hash.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("examples[", i, "].content_hash is empty"));
    }
    batch.push_back({&examples[i], absl::StrCat("examples[", i, "].id")});
  }
  const absl::Time now = TruncateToMicros(Now());
  AddExamplesResult result;
  RETURN_IF_ERROR(Write([&](Tx& tx) -> absl::Status {
    result = AddExamplesResult();
    // A concurrent DeleteDataset waits for us (or we see the dataset gone).
    if (!pg::LockDataset(tx, dataset)) return DatasetNotFound(dataset);
    ASSIGN_OR_RETURN(std::vector<std::string> ids, pg::InsertExamples(tx, dataset, batch, now));
    for (std::string& id : ids) {
      if (id.empty()) {
        ++result.duplicates;
      } else {
        result.ids.push_back(std::move(id));
      }
    }
    return absl::OkStatus();
  }));
  return result;
}

absl::StatusOr<ExamplePage> PostgresStore::ListExamples(const std::string& dataset, int page_size,
                                                        const std::string& page_token) {
  const int size = NormalizePageSize(page_size);
  int64_t cursor = 0;
  if (!page_token.empty()) {
    ASSIGN_OR_RETURN(std::vector<std::string> keys,
                     DecodePageToken(page_token, "examples", dataset, 1));
    ASSIGN_OR_RETURN(cursor, PageTokenInt(keys[0]));
  }
  ExamplePage page;
  int64_t last_seq = 0;
  bool exists = true;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    page.examples.clear();
    pqxx::result r = tx.Exec(
        "SELECT seq, id, input_json, expected_output_json, metadata_json, content_hash, "
        "created_at FROM examples WHERE dataset = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        dataset, cursor, size + 1);
    for (const auto& row : r) {
      if (static_cast<int>(page.examples.size()) < size) last_seq = pg::Int(row[0]);
      ExampleRecord e;
      e.dataset = dataset;
      e.id = pg::Text(row[1]);
      e.input_json = pg::Text(row[2]);
      e.expected_output_json = pg::Text(row[3]);
      e.metadata_json = pg::Text(row[4]);
      e.content_hash = pg::Text(row[5]);
      e.created_at = pg::TimeOf(row[6]);
      page.examples.push_back(std::move(e));
    }
    if (page.examples.empty()) exists = DatasetExists(tx, dataset);
    return absl::OkStatus();
  }));
  if (!exists) return DatasetNotFound(dataset);
  if (static_cast<int>(page.examples.size()) > size) {
    page.examples.resize(size);
    page.next_page_token = EncodePageToken("examples", dataset, {absl::StrCat(last_seq)});
  }
  return page;
}

absl::Status PostgresStore::DeleteExample(const std::string& dataset, const std::string& id) {
  return Write([&](Tx& tx) -> absl::Status {
    // The dataset row first, as every writer of examples takes it (else a DeleteDataset or
    // an AddExamples of the same id would deadlock with us).
    if (!pg::LockDataset(tx, dataset) ||
        tx.Exec("DELETE FROM examples WHERE dataset = $1 AND id = $2", dataset, id)
                .affected_rows() == 0) {
      return absl::NotFoundError(absl::StrCat("example ", id, " not found in dataset ", dataset));
    }
    tx.Exec("UPDATE datasets SET example_count = example_count - 1 WHERE name = $1", dataset);
    return absl::OkStatus();
  });
}

absl::StatusOr<int64_t> PostgresStore::CountExamplesSince(const std::string& dataset,
                                                          absl::Time since) {
  int64_t count = 0;
  bool exists = true;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    count =
        pg::Int(tx.Exec("SELECT count(*) FROM examples WHERE dataset = $1 AND "
                        "created_at >= $2",
                        dataset, pg::Micros(since))[0][0]);
    if (count == 0) exists = DatasetExists(tx, dataset);
    return absl::OkStatus();
  }));
  if (!exists) return DatasetNotFound(dataset);
  return count;
}

}  // namespace elexirion::store
