#include <regex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/api/job_convert.h"
#include "google/protobuf/util/json_util.h"
#include "server/api/proto_json.h"
#include "server/api/services.h"
#include "server/api/validation.h"
#include "server/common/status_macros.h"
#include "server/learning/training_data.h"
#include "server/store/store.h"

namespace elexirion::api {
namespace {

// Largest JSON Lines import accepted in one call.
constexpr size_t kMaxImportBytes = 8 << 20;

// Duplicates are judged on input and expected output only (metadata and ids differ freely).
// nlohmann::json objects are key-sorted, so dump() is canonical.
absl::StatusOr<store::ExampleRecord> ToRecord(const v1::Example& example,
                                              const std::string& where) {
  if (!example.has_input() || example.input().fields().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".input: required (a JSON object)"));
  }
  if (!example.id().empty()) {
    static const std::regex kId("[A-Za-z0-9_-]{1,64}");
    if (!std::regex_match(example.id(), kId)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".id: must match [A-Za-z0-9_-]{1,64}"));
    }
  }
  ASSIGN_OR_RETURN(nlohmann::json input, StructToJson(example.input()));
  ASSIGN_OR_RETURN(nlohmann::json expected, StructToJson(example.expected_output()));
  ASSIGN_OR_RETURN(nlohmann::json metadata, StructToJson(example.metadata()));
  store::ExampleRecord record;
  record.id = example.id();
  record.input_json = input.dump();
  record.expected_output_json = expected.dump();
  record.metadata_json = metadata.dump();
  record.content_hash = learning::ExampleContentHash(input, expected);
  return record;
}

absl::Status FromRecord(const store::ExampleRecord& record, v1::Example* out) {
  out->set_id(record.id);
  for (const auto& [text, target] :
       {std::pair{&record.input_json, out->mutable_input()},
        std::pair{&record.expected_output_json, out->mutable_expected_output()},
        std::pair{&record.metadata_json, out->mutable_metadata()}}) {
    auto json = nlohmann::json::parse(*text, nullptr, false);
    if (json.is_object()) RETURN_IF_ERROR(JsonToStruct(json, target));
  }
  out->set_created_at(absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", record.created_at,
                                       absl::UTCTimeZone()));
  return absl::OkStatus();
}

void FillDataset(const store::DatasetRecord& record, v1::Dataset* out) {
  out->set_name(record.name);
  out->set_pipeline_name(record.pipeline_name);
  out->set_example_count(record.example_count);
  *out->mutable_create_time() = ToProtoTime(record.created_at);
}

absl::Status CheckPageSize(int page_size) {
  if (page_size < 0 || page_size > store::kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must be in 0..", store::kMaxPageSize));
  }
  return absl::OkStatus();
}

absl::Status AddRecords(store::Store& store, const std::string& dataset,
                        std::vector<store::ExampleRecord> records,
                        v1::AddExamplesResponse* response) {
  if (records.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(store::AddExamplesResult result, store.AddExamples(dataset, records));
  for (const auto& id : result.ids) response->add_ids(id);
  response->set_duplicates(static_cast<int32_t>(result.duplicates));
  return absl::OkStatus();
}

}  // namespace

ServerUnaryReactor* DatasetServiceImpl::CreateDataset(CallbackServerContext* ctx,
                                                      const v1::CreateDatasetRequest* request,
                                                      v1::Dataset* response) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    RETURN_IF_ERROR(ValidateResourceName("dataset.name", request->dataset().name()));
    store::DatasetRecord record;
    record.name = request->dataset().name();
    record.pipeline_name = request->dataset().pipeline_name();
    ASSIGN_OR_RETURN(record, api_.store->CreateDataset(record));
    FillDataset(record, response);
    return absl::OkStatus();
  });
}

ServerUnaryReactor* DatasetServiceImpl::ListDatasets(CallbackServerContext* ctx,
                                                     const v1::ListDatasetsRequest* request,
                                                     v1::ListDatasetsResponse* response) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    RETURN_IF_ERROR(CheckPageSize(request->page_size()));
    ASSIGN_OR_RETURN(store::DatasetPage page,
                     api_.store->ListDatasets(request->page_size(), request->page_token()));
    for (const auto& d : page.datasets) FillDataset(d, response->add_datasets());
    response->set_next_page_token(page.next_page_token);
    return absl::OkStatus();
  });
}

ServerUnaryReactor* DatasetServiceImpl::DeleteDataset(CallbackServerContext* ctx,
                                                      const v1::DeleteDatasetRequest* request,
                                                      v1::DeleteDatasetResponse*) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    RETURN_IF_ERROR(ValidateResourceName("name", request->name()));
    return api_.store->DeleteDataset(request->name());
  });
}

ServerUnaryReactor* DatasetServiceImpl::AddExamples(CallbackServerContext* ctx,
                                                    const v1::AddExamplesRequest* request,
                                                    v1::AddExamplesResponse* response) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    RETURN_IF_ERROR(ValidateResourceName("dataset", request->dataset()));
    if (request->examples().empty()) {
      return absl::InvalidArgumentError("examples: at least one example is required");
    }
    std::vector<store::ExampleRecord> records;
    for (int i = 0; i < request->examples_size(); ++i) {
      ASSIGN_OR_RETURN(store::ExampleRecord record,
                       ToRecord(request->examples(i), absl::StrCat("examples[", i, "]")));
      records.push_back(std::move(record));
    }
    return AddRecords(*api_.store, request->dataset(), std::move(records), response);
  });
}

ServerUnaryReactor* DatasetServiceImpl::ListExamples(CallbackServerContext* ctx,
                                                     const v1::ListExamplesRequest* request,
                                                     v1::ListExamplesResponse* response) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    RETURN_IF_ERROR(ValidateResourceName("dataset", request->dataset()));
    RETURN_IF_ERROR(CheckPageSize(request->page_size()));
    ASSIGN_OR_RETURN(store::ExamplePage page,
                     api_.store->ListExamples(request->dataset(), request->page_size(),
                                              request->page_token()));
    for (const auto& e : page.examples) RETURN_IF_ERROR(FromRecord(e, response->add_examples()));
    response->set_next_page_token(page.next_page_token);
    return absl::OkStatus();
  });
}

ServerUnaryReactor* DatasetServiceImpl::DeleteExample(CallbackServerContext* ctx,
                                                      const v1::DeleteExampleRequest* request,
                                                      v1::DeleteExampleResponse*) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    RETURN_IF_ERROR(ValidateResourceName("dataset", request->dataset()));
    if (request->id().empty()) return absl::InvalidArgumentError("id: required");
    return api_.store->DeleteExample(request->dataset(), request->id());
  });
}

ServerUnaryReactor* DatasetServiceImpl::ImportExamples(CallbackServerContext* ctx,
                                                       const v1::ImportExamplesRequest* request,
                                                       v1::AddExamplesResponse* response) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    RETURN_IF_ERROR(ValidateResourceName("dataset", request->dataset()));
    if (request->jsonl().size() > kMaxImportBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("jsonl: larger than ", kMaxImportBytes, " bytes; import in parts"));
    }
    // Bad lines are reported alone; the good ones are kept.
    std::vector<store::ExampleRecord> records;
    std::istringstream lines(request->jsonl());
    int number = 0;
    for (std::string line; std::getline(lines, line);) {
      ++number;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      v1::Example example;
      auto parsed = google::protobuf::util::JsonStringToMessage(line, &example);
      if (!parsed.ok()) {
        response->add_errors(absl::StrCat("line ", number, ": ", parsed.message().ToString()));
        continue;
      }
      auto record = ToRecord(example, absl::StrCat("line ", number));
      if (!record.ok()) {
        response->add_errors(std::string(record.status().message()));
        continue;
      }
      records.push_back(*std::move(record));
    }
    return AddRecords(*api_.store, request->dataset(), std::move(records), response);
  });
}

ServerUnaryReactor* DatasetServiceImpl::ExportExamples(CallbackServerContext* ctx,
                                                       const v1::ExportExamplesRequest* request,
                                                       v1::ExportExamplesResponse* response) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    RETURN_IF_ERROR(ValidateResourceName("dataset", request->dataset()));
    RETURN_IF_ERROR(CheckPageSize(request->page_size()));
    // One page per call: a whole dataset in one message would exceed the message cap. The
    // default is the largest page so that callers from before paging still get every example
    // of a dataset of up to kMaxPageSize.
    const int page_size =
        request->page_size() == 0 ? store::kMaxPageSize : request->page_size();
    ASSIGN_OR_RETURN(store::ExamplePage page,
                     api_.store->ListExamples(request->dataset(), page_size,
                                              request->page_token()));
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    std::string out;
    for (const auto& record : page.examples) {
      v1::Example example;
      RETURN_IF_ERROR(FromRecord(record, &example));
      std::string line;
      if (auto s = google::protobuf::util::MessageToJsonString(example, &line, options); !s.ok()) {
        return absl::InternalError(
            absl::StrCat("example ", record.id, ": ", s.message().ToString()));
      }
      absl::StrAppend(&out, line, "\n");
    }
    response->set_jsonl(std::move(out));
    response->set_next_page_token(page.next_page_token);
    return absl::OkStatus();
  });
}

}  // namespace elexirion::api
