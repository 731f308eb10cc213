#include "client/cli/datasets_command.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <sstream>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/cli/example_files.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "server/common/status_macros.h"

namespace elexirion::cli {
namespace {

namespace fs = std::filesystem;

// The server's limits for one ImportExamples call (dataset_service.cc) and for pages.
constexpr size_t kImportMaxBytes = 8 << 20;
constexpr size_t kImportMaxExamples = 1000;
constexpr int kPageSize = 1000;

// One unary DatasetService call with the invocation's deadline and token.
absl::Status Call(Context& c, const std::function<grpc::Status(grpc::ClientContext*)>& rpc) {
  grpc::ClientContext context;
  c.client.Prepare(&context);
  return client::FromGrpcStatus(rpc(&context));
}

// A usage error unless there are exactly `count` positional words.
absl::Status ExpectPositional(const CommandArgs& args, size_t count, absl::string_view usage) {
  if (args.positional().size() != count) return UsageError(absl::StrCat("usage: ", usage));
  return absl::OkStatus();
}

std::string FormatTimestamp(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixSeconds(ts.seconds()),
                          absl::LocalTimeZone());
}

// --input/--expected/--metadata: a JSON object given on the command line.
absl::StatusOr<google::protobuf::Struct> ParseObjectFlag(const std::string& flag,
                                                         const std::string& text) {
  auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return UsageError(absl::StrCat(flag, ": must be a JSON object, e.g. '{\"code\": \"x = 1\"}'"));
  }
  google::protobuf::Struct out;
  if (!google::protobuf::util::JsonStringToMessage(json.dump(), &out).ok()) {
    return UsageError(absl::StrCat(flag, ": not representable as a protobuf Struct"));
  }
  return out;
}

absl::Status Create(Context& c, const CommandArgs& args) {
  RETURN_IF_ERROR(args.Check({"pipeline"}));
  RETURN_IF_ERROR(ExpectPositional(args, 1, "elexirion datasets create NAME [--pipeline P]"));
  v1::CreateDatasetRequest request;
  request.mutable_dataset()->set_name(args.positional()[0]);
  request.mutable_dataset()->set_pipeline_name(args.Get("pipeline"));
  v1::Dataset dataset;
  RETURN_IF_ERROR(Call(c, [&](grpc::ClientContext* ctx) {
    return c.client.datasets().CreateDataset(ctx, request, &dataset);
  }));
  if (c.inv.json) {
    c.out << ToJson(dataset);
  } else {
    c.out << "created dataset " << dataset.name()
          << (dataset.pipeline_name().empty() ? "" : " for pipeline " + dataset.pipeline_name())
          << "\n";
  }
  return absl::OkStatus();
}

absl::Status List(Context& c, const CommandArgs& args) {
  RETURN_IF_ERROR(args.Check({}));
  RETURN_IF_ERROR(ExpectPositional(args, 0, "elexirion datasets list"));
  v1::ListDatasetsResponse all;
  std::string token;
  do {
    v1::ListDatasetsRequest request;
    request.set_page_size(kPageSize);
    request.set_page_token(token);
    v1::ListDatasetsResponse page;
    RETURN_IF_ERROR(Call(c, [&](grpc::ClientContext* ctx) {
      return c.client.datasets().ListDatasets(ctx, request, &page);
    }));
    for (auto& d : *page.mutable_datasets()) *all.add_datasets() = std::move(d);
    token = page.next_page_token();
  } while (!token.empty());
  if (c.inv.json) {
    c.out << ToJson(all);
    return absl::OkStatus();
  }
  c.out << std::left << std::setw(26) << "NAME" << std::setw(26) << "PIPELINE" << std::setw(10)
        << "EXAMPLES"
        << "CREATED\n";
  for (const auto& d : all.datasets()) {
    c.out << std::left << std::setw(26) << d.name() << std::setw(26)
          << (d.pipeline_name().empty() ? "-" : d.pipeline_name()) << std::setw(10)
          << d.example_count() << FormatTimestamp(d.create_time()) << "\n";
  }
  if (all.datasets().empty()) c.out << "(no datasets)\n";
  return absl::OkStatus();
}

absl::Status Delete(Context& c, const CommandArgs& args) {
  RETURN_IF_ERROR(args.Check({}));
  RETURN_IF_ERROR(ExpectPositional(args, 1, "elexirion datasets delete NAME"));
  v1::DeleteDatasetRequest request;
  request.set_name(args.positional()[0]);
  v1::DeleteDatasetResponse response;
  RETURN_IF_ERROR(Call(c, [&](grpc::ClientContext* ctx) {
    return c.client.datasets().DeleteDataset(ctx, request, &response);
  }));
  if (!c.inv.json) c.out << "deleted dataset " << request.name() << "\n";
  return absl::OkStatus();
}

std::string Abbreviate(const google::protobuf::Struct& value, size_t width) {
  std::string text;
  (void)google::protobuf::util::MessageToJsonString(value, &text);
  return text.size() <= width ? text : text.substr(0, width - 3) + "...";
}

absl::Status Examples(Context& c, const CommandArgs& args) {
  RETURN_IF_ERROR(args.Check({}));
  RETURN_IF_ERROR(ExpectPositional(args, 1, "elexirion datasets examples NAME"));
  v1::ListExamplesResponse all;
  std::string token;
  do {
    v1::ListExamplesRequest request;
    request.set_dataset(args.positional()[0]);
    request.set_page_size(kPageSize);
    request.set_page_token(token);
    v1::ListExamplesResponse page;
    RETURN_IF_ERROR(Call(c, [&](grpc::ClientContext* ctx) {
      return c.client.datasets().ListExamples(ctx, request, &page);
    }));
    for (auto& e : *page.mutable_examples()) *all.add_examples() = std::move(e);
    token = page.next_page_token();
  } while (!token.empty());
  if (c.inv.json) {
    c.out << ToJson(all);
    return absl::OkStatus();
  }
  c.out << std::left << std::setw(10) << "ID" << std::setw(29) << "CREATED" << std::setw(42)
        << "INPUT"
        << "EXPECTED\n";
  for (const auto& e : all.examples()) {
    c.out << std::left << std::setw(10) << e.id() << std::setw(29) << e.created_at()
          << std::setw(42) << Abbreviate(e.input(), 40) << Abbreviate(e.expected_output(), 40)
          << "\n";
  }
  c.out << all.examples_size() << " examples\n";
  return absl::OkStatus();
}

absl::Status Add(Context& c, const CommandArgs& args) {
  RETURN_IF_ERROR(args.Check({"input", "expected", "metadata"}));
  constexpr char kUsage[] =
      "elexirion datasets add NAME --input JSON --expected JSON [--metadata JSON]";
  RETURN_IF_ERROR(ExpectPositional(args, 1, kUsage));
  if (args.Get("input").empty()) return UsageError("--input: required (a JSON object)");
  if (args.Get("expected").empty()) return UsageError("--expected: required (a JSON object)");
  v1::AddExamplesRequest request;
  request.set_dataset(args.positional()[0]);
  v1::Example* example = request.add_examples();
  ASSIGN_OR_RETURN(*example->mutable_input(), ParseObjectFlag("--input", args.Get("input")));
  ASSIGN_OR_RETURN(*example->mutable_expected_output(),
                   ParseObjectFlag("--expected", args.Get("expected")));
  if (!args.Get("metadata").empty()) {
    ASSIGN_OR_RETURN(*example->mutable_metadata(),
                     ParseObjectFlag("--metadata", args.Get("metadata")));
  }
  v1::AddExamplesResponse response;
  RETURN_IF_ERROR(Call(c, [&](grpc::ClientContext* ctx) {
    return c.client.datasets().AddExamples(ctx, request, &response);
  }));
  if (c.inv.json) {
    c.out << ToJson(response);
  } else if (!response.ids().empty()) {
    c.out << "added example " << response.ids(0) << " to " << request.dataset() << "\n";
  } else {
    c.out << "not added: the same input and expected output is already in " << request.dataset()
          << "\n";
  }
  return absl::OkStatus();
}

absl::Status DeleteExample(Context& c, const CommandArgs& args) {
  RETURN_IF_ERROR(args.Check({}));
  RETURN_IF_ERROR(ExpectPositional(args, 2, "elexirion datasets delete-example NAME ID"));
  v1::DeleteExampleRequest request;
  request.set_dataset(args.positional()[0]);
  request.set_id(args.positional()[1]);
  v1::DeleteExampleResponse response;
  RETURN_IF_ERROR(Call(c, [&](grpc::ClientContext* ctx) {
    return c.client.datasets().DeleteExample(ctx, request, &response);
  }));
  if (!c.inv.json) {
    c.out << "deleted example " << request.id() << " from " << request.dataset() << "\n";
  }
  return absl::OkStatus();
}

// Exactly one of two options naming the source or destination; usage error otherwise.
absl::Status ExactlyOne(const CommandArgs& args, const char* a, const char* b,
                        absl::string_view usage) {
  if (args.Get(a).empty() == args.Get(b).empty()) {
    return UsageError(absl::StrCat("usage: ", usage, " (exactly one of --", a, ", --", b, ")"));
  }
  return absl::OkStatus();
}

absl::Status Import(Context& c, const CommandArgs& args) {
  RETURN_IF_ERROR(args.Check({"jsonl", "dir"}));
  constexpr char kUsage[] = "elexirion datasets import NAME (--jsonl FILE | --dir DIR)";
  RETURN_IF_ERROR(ExpectPositional(args, 1, kUsage));
  RETURN_IF_ERROR(ExactlyOne(args, "jsonl", "dir", kUsage));
  const std::string dataset = args.positional()[0];
  // Every file is read and checked before the first call, so that a bad one names itself
  // and nothing is half imported.
  ASSIGN_OR_RETURN(std::vector<SourcedExample> examples,
                   args.Get("dir").empty() ? ReadExampleJsonl("--jsonl", args.Get("jsonl"))
                                           : ReadExampleDir("--dir", args.Get("dir")));
  ASSIGN_OR_RETURN(std::vector<ImportChunk> chunks,
                   ChunkForImport(examples, kImportMaxBytes, kImportMaxExamples));
  v1::AddExamplesResponse total;
  for (const ImportChunk& chunk : chunks) {
    v1::ImportExamplesRequest request;
    request.set_dataset(dataset);
    request.set_jsonl(chunk.jsonl);
    v1::AddExamplesResponse response;
    absl::Status s = Call(c, [&](grpc::ClientContext* ctx) {
      return c.client.datasets().ImportExamples(ctx, request, &response);
    });
    if (!s.ok()) {
      // Earlier chunks are committed; importing again is safe (duplicates are skipped).
      return absl::Status(
          s.code(),
          absl::StrCat(chunk.sources.front(), " .. ", chunk.sources.back(), ": ", s.message(), " (",
                       total.ids_size(), " examples imported before; importing again skips them)"));
    }
    for (auto& id : *response.mutable_ids()) total.add_ids(std::move(id));
    total.set_duplicates(total.duplicates() + response.duplicates());
    for (const auto& error : response.errors()) {
      total.add_errors(NameSourceInError(chunk, error));
    }
  }
  if (c.inv.json) {
    c.out << ToJson(total);
  } else {
    c.out << "imported into " << dataset << ": " << total.ids_size() << " added, "
          << total.duplicates() << " duplicates, " << total.errors_size() << " errors\n";
    for (const auto& error : total.errors()) c.out << "  error: " << error << "\n";
  }
  if (!total.errors().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(total.errors_size(), " examples rejected by the server: ", total.errors(0)));
  }
  return absl::OkStatus();
}

// Where exported pages go: JSON Lines to a file or stdout, or one file per example.
class ExportSink {
 public:
  virtual ~ExportSink() = default;
  virtual absl::Status Write(const std::vector<v1::Example>& page, const std::string& jsonl) = 0;
  virtual absl::Status Finish() = 0;
  virtual std::string Summary() const = 0;
};

class JsonlSink : public ExportSink {
 public:
  // `path` "-" is `stdout`; a file is written beside it and renamed at the end.
  static absl::StatusOr<std::unique_ptr<JsonlSink>> Open(const std::string& path, bool force,
                                                         std::ostream& stdout_stream) {
    auto sink = std::unique_ptr<JsonlSink>(new JsonlSink(path, stdout_stream));
    if (path == "-") return sink;
    std::error_code error;
    if (fs::exists(path, error) && !force) {
      return UsageError(absl::StrCat("--jsonl: \"", path, "\" exists; --force overwrites it"));
    }
    sink->temp_ = absl::StrCat(path, ".tmp.", ::getpid());
    sink->file_.open(sink->temp_, std::ios::binary | std::ios::trunc);
    if (!sink->file_) return UsageError(absl::StrCat("--jsonl: cannot write \"", path, "\""));
    return sink;
  }
  ~JsonlSink() override {
    if (!temp_.empty() && !finished_) {
      file_.close();
      std::error_code ignored;
      fs::remove(temp_, ignored);
    }
  }
  absl::Status Write(const std::vector<v1::Example>& page, const std::string& jsonl) override {
    (temp_.empty() ? stdout_ : file_) << jsonl;
    count_ += page.size();
    return absl::OkStatus();
  }
  absl::Status Finish() override {
    if (temp_.empty())
      return stdout_.flush() ? absl::OkStatus() : absl::UnavailableError("cannot write stdout");
    file_.close();
    std::error_code error;
    if (file_) fs::rename(temp_, path_, error);
    if (!file_ || error)
      return absl::UnavailableError(absl::StrCat("cannot write \"", path_, "\""));
    finished_ = true;
    return absl::OkStatus();
  }
  std::string Summary() const override {
    return absl::StrCat("exported ", count_, " examples to ", path_);
  }

 private:
  JsonlSink(std::string path, std::ostream& stdout_stream)
      : path_(std::move(path)), stdout_(stdout_stream) {}

  std::string path_;
  std::ostream& stdout_;
  std::string temp_;
  std::ofstream file_;
  size_t count_ = 0;
  bool finished_ = false;
};

class DirSink : public ExportSink {
 public:
  static absl::StatusOr<std::unique_ptr<DirSink>> Open(const std::string& dir, bool force) {
    std::error_code error;
    fs::create_directories(dir, error);
    if (error || !fs::is_directory(dir)) {
      return UsageError(absl::StrCat("--dir: cannot create directory \"", dir, "\""));
    }
    return std::unique_ptr<DirSink>(new DirSink(dir, force));
  }
  absl::Status Write(const std::vector<v1::Example>& page, const std::string&) override {
    for (const auto& example : page) {
      ASSIGN_OR_RETURN(WriteOutcome outcome, WriteExampleFile(dir_, example, force_));
      ++(outcome == WriteOutcome::kWritten ? written_ : unchanged_);
    }
    return absl::OkStatus();
  }
  absl::Status Finish() override { return absl::OkStatus(); }
  std::string Summary() const override {
    return absl::StrCat("exported ", written_ + unchanged_, " examples to ", dir_, " (", written_,
                        " written, ", unchanged_, " unchanged)");
  }

 private:
  DirSink(std::string dir, bool force) : dir_(std::move(dir)), force_(force) {}

  std::string dir_;
  bool force_;
  size_t written_ = 0;
  size_t unchanged_ = 0;
};

absl::StatusOr<std::vector<v1::Example>> ParsePage(const std::string& jsonl) {
  std::vector<v1::Example> out;
  std::istringstream lines(jsonl);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    v1::Example example;
    if (auto s = google::protobuf::util::JsonStringToMessage(line, &example); !s.ok()) {
      return absl::DataLossError(
          absl::StrCat("the server sent an unreadable example: ", s.message().ToString()));
    }
    out.push_back(std::move(example));
  }
  return out;
}

absl::Status Export(Context& c, const CommandArgs& args) {
  RETURN_IF_ERROR(args.Check({"jsonl", "dir", "force"}));
  constexpr char kUsage[] = "elexirion datasets export NAME (--jsonl FILE|- | --dir DIR) [--force]";
  RETURN_IF_ERROR(ExpectPositional(args, 1, kUsage));
  RETURN_IF_ERROR(ExactlyOne(args, "jsonl", "dir", kUsage));
  const bool force = args.Has("force");
  const std::string jsonl_path = args.Get("jsonl");
  const bool quiet = jsonl_path == "-";  // JSON Lines on stdout: no summary mixed in
  if (!jsonl_path.empty() && !quiet && !force && fs::exists(jsonl_path)) {
    return UsageError(absl::StrCat("--jsonl: \"", jsonl_path, "\" exists; --force overwrites it"));
  }
  // Opened once the first page arrived, so that an unknown dataset leaves no file behind.
  std::unique_ptr<ExportSink> sink;
  auto open_sink = [&]() -> absl::Status {
    if (!jsonl_path.empty()) {
      ASSIGN_OR_RETURN(sink, JsonlSink::Open(jsonl_path, force, c.out));
    } else {
      ASSIGN_OR_RETURN(sink, DirSink::Open(args.Get("dir"), force));
    }
    return absl::OkStatus();
  };
  v1::ExportExamplesRequest request;
  request.set_dataset(args.positional()[0]);
  request.set_page_size(kPageSize);
  while (true) {
    v1::ExportExamplesResponse page;
    absl::Status s = Call(c, [&](grpc::ClientContext* ctx) {
      return c.client.datasets().ExportExamples(ctx, request, &page);
    });
    // A page of unusually large examples may exceed the server's message cap: smaller pages.
    if (absl::IsResourceExhausted(s) && request.page_size() > 1) {
      request.set_page_size(request.page_size() / 2);
      continue;
    }
    RETURN_IF_ERROR(s);
    if (sink == nullptr) RETURN_IF_ERROR(open_sink());
    ASSIGN_OR_RETURN(std::vector<v1::Example> examples, ParsePage(page.jsonl()));
    RETURN_IF_ERROR(sink->Write(examples, page.jsonl()));
    if (page.next_page_token().empty()) break;
    request.set_page_token(page.next_page_token());
  }
  RETURN_IF_ERROR(sink->Finish());
  if (!quiet) c.out << sink->Summary() << " from " << request.dataset() << "\n";
  return absl::OkStatus();
}

}  // namespace

void AddDatasetCommands(std::vector<Command>* commands) {
  commands->insert(
      commands->end(),
      {
          {"datasets create", Create, "datasets create NAME [--pipeline P]",
           "create a dataset of training examples (for a pipeline)", ""},
          {"datasets list", List, "datasets list", "list datasets and their example counts", ""},
          {"datasets delete", Delete, "datasets delete NAME", "delete a dataset and its examples",
           ""},
          {"datasets examples", Examples, "datasets examples NAME", "list a dataset's examples",
           ""},
          {"datasets add", Add, "datasets add NAME --input JSON --expected JSON [--metadata JSON]",
           "add one example (JSON objects on the command line)", ""},
          {"datasets delete-example", DeleteExample, "datasets delete-example NAME ID",
           "delete one example", ""},
          {"datasets import", Import, "datasets import NAME (--jsonl FILE | --dir DIR)",
           "add examples from files; duplicates are skipped",
           "--jsonl FILE: one example object per line.\n"
           "--dir DIR: one {id}.json per example, {id, input, expected_output, metadata,\n"
           "  created_at} (the design document's layout). Every file is checked (JSON, UTF-8)\n"
           "  before anything is sent; a bad one is named and nothing is imported."},
          {"datasets export", Export, "datasets export NAME (--jsonl FILE|- | --dir DIR) [--force]",
           "write a dataset's examples to JSON Lines or a directory",
           "--jsonl -: JSON Lines on stdout. --dir DIR: one {id}.json per example (design\n"
           "layout); identical files are left alone, different ones kept unless --force."},
      });
}

}  // namespace elexirion::cli
