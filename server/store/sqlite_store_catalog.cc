// SqliteStore: programs, pipelines, datasets and examples.
#include <limits>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/store/sqlite_connection.h"
#include "server/store/sqlite_store.h"
#include "server/store/store_util.h"

namespace elexirion::store {
namespace {

using sqlite::Connection;
using sqlite::Stmt;

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();

// ---- Programs

constexpr char kProgramColumns[] =
    "name, version, pipeline_name, job_id, optimizer, dspy_json, optimized_yaml, scores_json, "
    "production, created_at";

ProgramRecord ReadProgram(const Stmt& s) {
  ProgramRecord p;
  p.name = s.ColumnText(0);
  p.version = s.ColumnInt(1);
  p.pipeline_name = s.ColumnText(2);
  p.job_id = s.ColumnText(3);
  p.optimizer = s.ColumnText(4);
  p.dspy_json = s.ColumnText(5);
  p.optimized_yaml = s.ColumnText(6);
  p.scores_json = s.ColumnText(7);
  p.production = s.ColumnInt(8) != 0;
  p.created_at = s.ColumnTime(9);
  return p;
}

// Runs a program query (parameters bound by `bind`) and returns its first row, if any.
template <typename Bind>
absl::StatusOr<std::optional<ProgramRecord>> QueryProgram(Connection& c, absl::string_view where,
                                                          Bind bind) {
  ASSIGN_OR_RETURN(
      Stmt s, c.Prepare(absl::StrCat("SELECT ", kProgramColumns, " FROM programs WHERE ", where)));
  bind(s);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::nullopt;
  return ReadProgram(s);
}

// ---- Pipelines

PipelineRecord ReadPipeline(const Stmt& s) {
  PipelineRecord p;
  p.name = s.ColumnText(0);
  p.yaml = s.ColumnText(1);
  p.revision = s.ColumnInt(2);
  p.updated_at = s.ColumnTime(3);
  return p;
}

// ---- Datasets

DatasetRecord ReadDataset(const Stmt& s) {
  DatasetRecord d;
  d.name = s.ColumnText(0);
  d.pipeline_name = s.ColumnText(1);
  d.created_at = s.ColumnTime(2);
  d.example_count = s.ColumnInt(3);
  return d;
}

absl::Status DatasetNotFound(absl::string_view name) {
  return absl::NotFoundError(absl::StrCat("dataset ", name, " not found"));
}

absl::StatusOr<bool> DatasetExists(Connection& c, const std::string& name) {
  ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT 1 FROM datasets WHERE name = ?1"));
  s.BindText(1, name);
  return s.Step();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Programs

absl::StatusOr<ProgramRecord> SqliteStore::CreateProgramVersion(const ProgramRecord& program,
                                                                bool* already_existed) {
  if (already_existed != nullptr) *already_existed = false;
  if (program.name.empty()) return absl::InvalidArgumentError("name is empty");
  ProgramRecord p = program;
  p.created_at = TruncateToMicros(p.created_at == kUnsetTime ? Now() : p.created_at);
  bool existed = false;
  RETURN_IF_ERROR(Write([&](Connection& c) -> absl::Status {
    if (!p.job_id.empty()) {
      ASSIGN_OR_RETURN(std::optional<ProgramRecord> old,
                       QueryProgram(c, "name = ?1 AND job_id = ?2",
                                    [&](Stmt& s) { s.BindText(1, p.name).BindText(2, p.job_id); }));
      if (old.has_value()) {
        p = *std::move(old);
        existed = true;
        return absl::OkStatus();
      }
    }
    {
      ASSIGN_OR_RETURN(
          Stmt s, c.Prepare("SELECT coalesce(max(version), 0) + 1 FROM programs WHERE name = ?1"));
      s.BindText(1, p.name);
      ASSIGN_OR_RETURN(bool row, s.Step());
      p.version = row ? s.ColumnInt(0) : 1;
    }
    if (p.production) {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("UPDATE programs SET production = 0 WHERE name = ?1 "
                                         "AND production = 1"));
      s.BindText(1, p.name);
      RETURN_IF_ERROR(s.Run());
    }
    ASSIGN_OR_RETURN(Stmt s,
                     c.Prepare(absl::StrCat("INSERT INTO programs (", kProgramColumns,
                                            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")));
    s.BindText(1, p.name)
        .BindInt(2, p.version)
        .BindText(3, p.pipeline_name)
        .BindTextOrNull(4, p.job_id)
        .BindText(5, p.optimizer)
        .BindText(6, p.dspy_json)
        .BindText(7, p.optimized_yaml)
        .BindText(8, p.scores_json)
        .BindInt(9, p.production ? 1 : 0)
        .BindTime(10, p.created_at);
    return s.Run();
  }));
  if (already_existed != nullptr) *already_existed = existed;
  return p;
}

absl::StatusOr<ProgramRecord> SqliteStore::GetProgram(const std::string& name, int64_t version) {
  std::optional<ProgramRecord> out;
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(out, QueryProgram(c, "name = ?1 AND version = ?2",
                                       [&](Stmt& s) { s.BindText(1, name).BindInt(2, version); }));
    return absl::OkStatus();
  }));
  if (!out.has_value()) {
    return absl::NotFoundError(absl::StrCat("program ", name, " version ", version, " not found"));
  }
  return *std::move(out);
}

absl::StatusOr<ProgramRecord> SqliteStore::GetLatestProgram(const std::string& name) {
  std::optional<ProgramRecord> out;
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(out, QueryProgram(c, "name = ?1 ORDER BY version DESC LIMIT 1",
                                       [&](Stmt& s) { s.BindText(1, name); }));
    return absl::OkStatus();
  }));
  if (!out.has_value()) return absl::NotFoundError(absl::StrCat("program ", name, " not found"));
  return *std::move(out);
}

absl::StatusOr<ProgramRecord> SqliteStore::GetLatestProgramForPipeline(
    const std::string& pipeline_name) {
  std::optional<ProgramRecord> out;
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(out, QueryProgram(c,
                                       "pipeline_name = ?1 ORDER BY created_at DESC, "
                                       "version DESC LIMIT 1",
                                       [&](Stmt& s) { s.BindText(1, pipeline_name); }));
    return absl::OkStatus();
  }));
  if (!out.has_value()) {
    return absl::NotFoundError(absl::StrCat("no program optimizes pipeline ", pipeline_name));
  }
  return *std::move(out);
}

absl::StatusOr<ProgramRecord> SqliteStore::GetProductionProgram(const std::string& name) {
  std::optional<ProgramRecord> out;
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(out, QueryProgram(c, "name = ?1 AND production = 1",
                                       [&](Stmt& s) { s.BindText(1, name); }));
    return absl::OkStatus();
  }));
  if (!out.has_value()) {
    return absl::NotFoundError(absl::StrCat("program ", name, " has no production version"));
  }
  return *std::move(out);
}

absl::StatusOr<ProgramPage> SqliteStore::ListPrograms(const std::string& name, int page_size,
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
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    std::string sql =
        by_name
            ? absl::StrCat("SELECT ", kProgramColumns,
                           " FROM programs WHERE name = ?1 AND version < ?2 "
                           "ORDER BY version DESC LIMIT ?3")
            : absl::StrCat("SELECT ", kProgramColumns,
                           " FROM programs p WHERE version = (SELECT max(version) FROM "
                           "programs q WHERE q.name = p.name) AND (created_at, name) < (?2, ?1) "
                           "ORDER BY created_at DESC, name DESC LIMIT ?3");
    ASSIGN_OR_RETURN(Stmt s, c.Prepare(sql));
    s.BindText(1, by_name ? name : cursor_name).BindInt(2, cursor_int).BindInt(3, size + 1);
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      page.programs.push_back(ReadProgram(s));
    }
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

absl::StatusOr<ProgramRecord> SqliteStore::PromoteProgram(const std::string& name,
                                                          int64_t version) {
  std::optional<ProgramRecord> out;
  RETURN_IF_ERROR(Write([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(out, QueryProgram(c, "name = ?1 AND version = ?2",
                                       [&](Stmt& s) { s.BindText(1, name).BindInt(2, version); }));
    if (!out.has_value()) {
      return absl::NotFoundError(
          absl::StrCat("program ", name, " version ", version, " not found"));
    }
    {
      // Demote first: the partial unique index allows one production row per name.
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("UPDATE programs SET production = 0 WHERE name = ?1 "
                                         "AND production = 1 AND version != ?2"));
      s.BindText(1, name).BindInt(2, version);
      RETURN_IF_ERROR(s.Run());
    }
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("UPDATE programs SET production = 1 WHERE name = ?1 AND "
                                       "version = ?2"));
    s.BindText(1, name).BindInt(2, version);
    RETURN_IF_ERROR(s.Run());
    out->production = true;
    return absl::OkStatus();
  }));
  return *std::move(out);
}

// ---------------------------------------------------------------------------------------
// Pipelines

absl::StatusOr<PipelineRecord> SqliteStore::UpsertPipeline(const PipelineRecord& pipeline) {
  if (pipeline.name.empty()) return absl::InvalidArgumentError("name is empty");
  const absl::Time updated =
      TruncateToMicros(pipeline.updated_at == kUnsetTime ? Now() : pipeline.updated_at);
  PipelineRecord out;
  RETURN_IF_ERROR(Write([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO pipelines (name, yaml, revision, updated_at) "
                                       "VALUES (?1, ?2, 1, ?3) ON CONFLICT (name) DO UPDATE SET "
                                       "yaml = excluded.yaml, revision = revision + 1, "
                                       "updated_at = excluded.updated_at "
                                       "RETURNING name, yaml, revision, updated_at"));
    s.BindText(1, pipeline.name).BindText(2, pipeline.yaml).BindTime(3, updated);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return absl::InternalError("upsert gave no row");
    out = ReadPipeline(s);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<PipelineRecord> SqliteStore::GetPipeline(const std::string& name) {
  std::optional<PipelineRecord> out;
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT name, yaml, revision, updated_at FROM pipelines "
                                       "WHERE name = ?1"));
    s.BindText(1, name);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) out = ReadPipeline(s);
    return absl::OkStatus();
  }));
  if (!out.has_value()) return absl::NotFoundError(absl::StrCat("pipeline ", name, " not found"));
  return *std::move(out);
}

absl::StatusOr<PipelinePage> SqliteStore::ListPipelines(int page_size,
                                                        const std::string& page_token) {
  const int size = NormalizePageSize(page_size);
  std::string cursor;
  if (!page_token.empty()) {
    ASSIGN_OR_RETURN(std::vector<std::string> keys,
                     DecodePageToken(page_token, "pipelines", "", 1));
    cursor = keys[0];
  }
  PipelinePage page;
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT name, yaml, revision, updated_at FROM pipelines "
                                       "WHERE name > ?1 ORDER BY name LIMIT ?2"));
    s.BindText(1, cursor).BindInt(2, size + 1);
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      page.pipelines.push_back(ReadPipeline(s));
    }
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.pipelines.size()) > size) {
    page.pipelines.resize(size);
    page.next_page_token = EncodePageToken("pipelines", "", {page.pipelines.back().name});
  }
  return page;
}

absl::Status SqliteStore::DeletePipeline(const std::string& name) {
  return Write([&](Connection& c) -> absl::Status {
    {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("DELETE FROM pipelines WHERE name = ?1"));
      s.BindText(1, name);
      RETURN_IF_ERROR(s.Run());
    }
    if (c.Changes() == 0) return absl::NotFoundError(absl::StrCat("pipeline ", name, " not found"));
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------------------
// Datasets

absl::StatusOr<DatasetRecord> SqliteStore::CreateDataset(const DatasetRecord& dataset) {
  if (dataset.name.empty()) return absl::InvalidArgumentError("name is empty");
  DatasetRecord d = dataset;
  d.example_count = 0;
  d.created_at = TruncateToMicros(d.created_at == kUnsetTime ? Now() : d.created_at);
  absl::Status status = Write([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO datasets (name, pipeline_name, created_at, "
                                       "example_count) VALUES (?1, ?2, ?3, 0)"));
    s.BindText(1, d.name).BindText(2, d.pipeline_name).BindTime(3, d.created_at);
    return s.Run();
  });
  if (absl::IsAlreadyExists(status)) {
    return absl::AlreadyExistsError(absl::StrCat("dataset ", d.name, " already exists"));
  }
  RETURN_IF_ERROR(status);
  return d;
}

absl::StatusOr<DatasetRecord> SqliteStore::GetDataset(const std::string& name) {
  std::optional<DatasetRecord> out;
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT name, pipeline_name, created_at, example_count "
                                       "FROM datasets WHERE name = ?1"));
    s.BindText(1, name);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) out = ReadDataset(s);
    return absl::OkStatus();
  }));
  if (!out.has_value()) return DatasetNotFound(name);
  return *std::move(out);
}

absl::StatusOr<DatasetPage> SqliteStore::ListDatasets(int page_size,
                                                      const std::string& page_token) {
  const int size = NormalizePageSize(page_size);
  std::string cursor;
  if (!page_token.empty()) {
    ASSIGN_OR_RETURN(std::vector<std::string> keys, DecodePageToken(page_token, "datasets", "", 1));
    cursor = keys[0];
  }
  DatasetPage page;
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT name, pipeline_name, created_at, example_count "
                                       "FROM datasets WHERE name > ?1 ORDER BY name LIMIT ?2"));
    s.BindText(1, cursor).BindInt(2, size + 1);
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      page.datasets.push_back(ReadDataset(s));
    }
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.datasets.size()) > size) {
    page.datasets.resize(size);
    page.next_page_token = EncodePageToken("datasets", "", {page.datasets.back().name});
  }
  return page;
}

absl::Status SqliteStore::DeleteDataset(const std::string& name) {
  return Write([&](Connection& c) -> absl::Status {
    {
      // Examples go with it (ON DELETE CASCADE).
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("DELETE FROM datasets WHERE name = ?1"));
      s.BindText(1, name);
      RETURN_IF_ERROR(s.Run());
    }
    if (c.Changes() == 0) return DatasetNotFound(name);
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------------------
// Examples

absl::StatusOr<std::string> SqliteStore::InsertExample(Connection& c, const std::string& dataset,
                                                       const ExampleRecord& e, absl::Time now,
                                                       const std::string& where) {
  // Insert first and ask why only when nothing was inserted: one statement in the common
  // case (this runs for every harvested execution, on the ingestion writer).
  for (int attempt = 0;; ++attempt) {
    // 8 hex chars when generated: collisions are rare but possible in large datasets.
    const std::string id = e.id.empty() ? NewStoreId(8) : e.id;
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO examples (dataset, id, input_json, "
                                       "expected_output_json, metadata_json, content_hash, "
                                       "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                                       "ON CONFLICT DO NOTHING"));
    s.BindText(1, dataset)
        .BindText(2, id)
        .BindText(3, e.input_json)
        .BindText(4, e.expected_output_json)
        .BindText(5, e.metadata_json)
        .BindText(6, e.content_hash)
        .BindTime(7, e.created_at == kUnsetTime ? now : e.created_at);
    RETURN_IF_ERROR(s.Run());
    if (c.Changes() == 1) return id;
    ASSIGN_OR_RETURN(Stmt dup, c.Prepare("SELECT 1 FROM examples WHERE dataset = ?1 AND "
                                         "content_hash = ?2"));
    dup.BindText(1, dataset).BindText(2, e.content_hash);
    ASSIGN_OR_RETURN(bool is_duplicate, dup.Step());
    if (is_duplicate) return std::string();
    if (!e.id.empty()) {
      return absl::AlreadyExistsError(
          absl::StrCat(where, " \"", e.id, "\" already exists in dataset ", dataset));
    }
    if (attempt == 20) return absl::InternalError("cannot find a free example id");
  }
}

absl::StatusOr<AddExamplesResult> SqliteStore::AddExamples(
    const std::string& dataset, const std::vector<ExampleRecord>& examples) {
  if (dataset.empty()) return absl::InvalidArgumentError("dataset is empty");
  for (size_t i = 0; i < examples.size(); ++i) {
    if (examples[i].content_hash.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("examples[", i, "].content_hash is empty"));
    }
  }
  const absl::Time now = TruncateToMicros(Now());
  AddExamplesResult result;
  RETURN_IF_ERROR(Write([&](Connection& c) -> absl::Status {
    result = AddExamplesResult();
    ASSIGN_OR_RETURN(bool exists, DatasetExists(c, dataset));
    if (!exists) return DatasetNotFound(dataset);
    for (size_t i = 0; i < examples.size(); ++i) {
      ASSIGN_OR_RETURN(std::string id, InsertExample(c, dataset, examples[i], now,
                                                     absl::StrCat("examples[", i, "].id")));
      if (id.empty()) {
        ++result.duplicates;
      } else {
        result.ids.push_back(std::move(id));
      }
    }
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("UPDATE datasets SET example_count = example_count + ?2 "
                                       "WHERE name = ?1"));
    s.BindText(1, dataset).BindInt(2, static_cast<int64_t>(result.ids.size()));
    return s.Run();
  }));
  return result;
}

absl::StatusOr<ExamplePage> SqliteStore::ListExamples(const std::string& dataset, int page_size,
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
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    {
      ASSIGN_OR_RETURN(Stmt s,
                       c.Prepare("SELECT seq, id, input_json, expected_output_json, metadata_json, "
                                 "content_hash, created_at FROM examples WHERE dataset = ?1 AND "
                                 "seq > ?2 ORDER BY seq LIMIT ?3"));
      s.BindText(1, dataset).BindInt(2, cursor).BindInt(3, size + 1);
      while (true) {
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        if (static_cast<int>(page.examples.size()) < size) last_seq = s.ColumnInt(0);
        ExampleRecord e;
        e.dataset = dataset;
        e.id = s.ColumnText(1);
        e.input_json = s.ColumnText(2);
        e.expected_output_json = s.ColumnText(3);
        e.metadata_json = s.ColumnText(4);
        e.content_hash = s.ColumnText(5);
        e.created_at = s.ColumnTime(6);
        page.examples.push_back(std::move(e));
      }
    }
    if (page.examples.empty()) {
      ASSIGN_OR_RETURN(exists, DatasetExists(c, dataset));
    }
    return absl::OkStatus();
  }));
  if (!exists) return DatasetNotFound(dataset);
  if (static_cast<int>(page.examples.size()) > size) {
    page.examples.resize(size);
    page.next_page_token = EncodePageToken("examples", dataset, {absl::StrCat(last_seq)});
  }
  return page;
}

absl::Status SqliteStore::DeleteExample(const std::string& dataset, const std::string& id) {
  return Write([&](Connection& c) -> absl::Status {
    {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("DELETE FROM examples WHERE dataset = ?1 AND id = ?2"));
      s.BindText(1, dataset).BindText(2, id);
      RETURN_IF_ERROR(s.Run());
    }
    if (c.Changes() == 0) {
      return absl::NotFoundError(absl::StrCat("example ", id, " not found in dataset ", dataset));
    }
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("UPDATE datasets SET example_count = example_count - 1 "
                                       "WHERE name = ?1"));
    s.BindText(1, dataset);
    return s.Run();
  });
}

absl::StatusOr<int64_t> SqliteStore::CountExamplesSince(const std::string& dataset,
                                                        absl::Time since) {
  int64_t count = 0;
  bool exists = true;
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT count(*) FROM examples WHERE dataset = ?1 AND "
                                         "created_at >= ?2"));
      s.BindText(1, dataset).BindTime(2, since);
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) count = s.ColumnInt(0);
    }
    if (count == 0) {
      ASSIGN_OR_RETURN(exists, DatasetExists(c, dataset));
    }
    return absl::OkStatus();
  }));
  if (!exists) return DatasetNotFound(dataset);
  return count;
}

}  // namespace elexirion::store
