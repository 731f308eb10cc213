// RecordExecutions parses its request with the records' Structs left as bytes
// (record_wire.proto) and writes their JSON text straight from the wire: for any bytes, that
// must give what parsing the elexirion.v1 request and StructToJsonText give, and refuse what
// protobuf refuses. Checked on random Structs, on merged and repeated fields, at protobuf's
// recursion limit, and on randomly damaged requests.
#include "server/api/struct_wire.h"

#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "elexirion/internal/record_wire.pb.h"
#include "elexirion/v1/telemetry.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/api/execution_record.h"
#include "server/api/proto_json.h"
#include "tests/api/random_struct.h"

namespace elexirion::api {
namespace {

constexpr int kBudget = kStructDepthBudgetInBatch;

using testing::RandomStruct;

v1::ExecutionRecord RandomRecord(std::mt19937& rng) {
  v1::ExecutionRecord r;
  r.set_pipeline_name("p");
  r.set_record_id("r-" + std::to_string(rng() % 1000));
  r.set_success(true);
  *r.mutable_input() = RandomStruct(rng);
  *r.mutable_output() = RandomStruct(rng);
  if (rng() % 2 == 0) *r.mutable_metadata() = RandomStruct(rng);
  return r;
}

// A request whose one record is `record_bytes` (which may hold repeated fields).
std::string RequestOf(const std::string& record_bytes) {
  std::string out;
  out.push_back(0x0a);  // field 1, length-delimited
  uint64_t n = record_bytes.size();
  while (n >= 0x80) {
    out.push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  out.push_back(static_cast<char>(n));
  return out + record_bytes;
}

// What the typed path gives for request bytes: per record, the three texts or the error;
// nullopt when protobuf does not parse the request.
using Texts = std::vector<std::string>;
std::optional<Texts> TypedPath(const std::string& bytes) {
  v1::RecordExecutionsRequest request;
  if (!request.ParseFromString(bytes)) return std::nullopt;
  Texts out;
  for (const auto& r : request.records()) {
    for (const auto* s : {&r.input(), &r.output(), &r.metadata()}) {
      auto text = StructToJsonText(*s);
      out.push_back(text.ok() ? *text : "error: " + std::string(text.status().message()));
    }
  }
  return out;
}

// The wire path: nullopt when the request (or any record's Struct) is refused as malformed.
std::optional<Texts> WirePath(const std::string& bytes) {
  internal::RecordExecutionsRequestWire request;
  if (!request.ParseFromString(bytes)) return std::nullopt;
  Texts out;
  for (const auto& r : request.records()) {
    for (const auto* s : {&r.input(), &r.output(), &r.metadata()}) {
      auto text = StructWireToJsonText(*s, kBudget);
      if (!text.ok() && !absl::StrContains(text.status().message(), "finite")) {
        return std::nullopt;
      }
      out.push_back(text.ok() ? *text : "error: " + std::string(text.status().message()));
    }
  }
  return out;
}

void ExpectSamePaths(const std::string& bytes) {
  std::optional<Texts> typed = TypedPath(bytes);
  std::optional<Texts> wire = WirePath(bytes);
  ASSERT_EQ(typed.has_value(), wire.has_value())
      << (typed.has_value() ? "protobuf parses bytes the wire path refuses"
                            : "the wire path accepts bytes protobuf refuses");
  if (typed.has_value()) {
    EXPECT_EQ(*typed, *wire);
  }
}

TEST(StructWireTest, RandomRecordsGiveTheTypedText) {
  std::mt19937 rng(11);
  for (int round = 0; round < 500; ++round) {
    v1::RecordExecutionsRequest request;
    for (int i = static_cast<int>(rng() % 3) + 1; i > 0; --i) {
      *request.add_records() = RandomRecord(rng);
    }
    const std::string bytes = request.SerializeAsString();
    ExpectSamePaths(bytes);
    // The size limit sees the same serialized size.
    internal::RecordExecutionsRequestWire wire;
    ASSERT_TRUE(wire.ParseFromString(bytes));
    for (int i = 0; i < request.records_size(); ++i) {
      EXPECT_EQ(wire.records(i).ByteSizeLong(), request.records(i).ByteSizeLong());
    }
  }
}

TEST(StructWireTest, RepeatedFieldsMergeAsProtobufMergesThem) {
  // A record sent as two concatenated halves: protobuf merges the Structs (a key in both:
  // the later value wins), and each Value's oneof keeps its last member.
  auto from_json = [](const std::string& json) {
    google::protobuf::Struct s;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &s).ok()) << json;
    return s;
  };
  v1::ExecutionRecord first, second;
  *first.mutable_input() = from_json(R"({"a": 1, "b": {"x": [1, 2]}, "c": "old", "d": true})");
  *second.mutable_input() = from_json(R"({"c": "new", "b": {"y": null}, "e": [3]})");
  *first.mutable_output() = from_json(R"({"list": [1]})");
  *second.mutable_output() = from_json(R"({"list": [2, {"k": "v"}]})");
  ExpectSamePaths(RequestOf(first.SerializeAsString() + second.SerializeAsString()));

  // One Value with several oneof members, struct members merged, a repeated map entry key.
  google::protobuf::Value as_struct, as_string, as_struct_again;
  *as_struct.mutable_struct_value() = from_json(R"({"m": 1})");
  as_string.set_string_value("s");
  *as_struct_again.mutable_struct_value() = from_json(R"({"n": 2})");
  google::protobuf::Struct one, two;
  (*one.mutable_fields())["v"] = as_struct;
  (*two.mutable_fields())["v"] = as_string;
  google::protobuf::Struct three;
  (*three.mutable_fields())["v"] = as_struct_again;
  for (const std::string& input_bytes :
       {one.SerializeAsString() + two.SerializeAsString(),
        two.SerializeAsString() + three.SerializeAsString() + one.SerializeAsString()}) {
    std::string record;
    record.push_back(0x32);  // input = 6, length-delimited
    record.push_back(static_cast<char>(input_bytes.size()));
    ExpectSamePaths(RequestOf(record + input_bytes));
  }
}

TEST(StructWireTest, RefusesWhatProtobufRefusesAtItsRecursionLimit) {
  int accepted = 0;
  for (int levels = 20; levels <= 40; ++levels) {
    SCOPED_TRACE(levels);
    v1::ExecutionRecord record;
    google::protobuf::Value* at = &(*record.mutable_input()->mutable_fields())["d"];
    for (int i = 0; i < levels; ++i) {
      at = (i % 2 == 0) ? &(*at->mutable_struct_value()->mutable_fields())["d"]
                        : at->mutable_list_value()->add_values();
    }
    at->set_number_value(1);
    ExpectSamePaths(RequestOf(record.SerializeAsString()));
    // A record that is the message itself (StreamExecutions) has one level more to spend.
    v1::ExecutionRecord typed;
    internal::ExecutionRecordWire wire;
    const std::string bytes = record.SerializeAsString();
    ASSERT_TRUE(wire.ParseFromString(bytes));
    EXPECT_EQ(typed.ParseFromString(bytes),
              StructWireToJsonText(wire.input(), kStructDepthBudgetInStream).ok());
    accepted += TypedPath(RequestOf(record.SerializeAsString())).has_value() ? 1 : 0;
  }
  // The limit falls inside the range: both sides of it were compared.
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, 21);
}

TEST(StructWireTest, DamagedRequestsAreRefusedOrReadAlike) {
  std::mt19937 rng(5);
  int refused = 0;
  const int rounds = std::getenv("STRUCT_WIRE_ROUNDS") != nullptr
                         ? std::atoi(std::getenv("STRUCT_WIRE_ROUNDS"))
                         : 20000;
  google::protobuf::LogSilencer quiet;  // protobuf logs each non-UTF-8 string it refuses
  for (int round = 0; round < rounds; ++round) {
    v1::RecordExecutionsRequest request;
    *request.add_records() = RandomRecord(rng);
    std::string bytes = request.SerializeAsString();
    for (int edits = static_cast<int>(rng() % 3) + 1; edits > 0 && !bytes.empty(); --edits) {
      const size_t at = rng() % bytes.size();
      switch (rng() % 4) {
        case 0:
          bytes[at] = static_cast<char>(rng());
          break;
        case 1:
          bytes[at] = static_cast<char>(bytes[at] ^ (1 << (rng() % 8)));
          break;
        case 2:
          bytes.erase(at, 1 + rng() % 3);
          break;
        default:
          bytes.insert(at, 1, static_cast<char>(rng()));
      }
    }
    SCOPED_TRACE(round);
    ExpectSamePaths(bytes);
    if (!TypedPath(bytes).has_value()) ++refused;
    if (HasFatalFailure() || HasNonfatalFailure()) return;
  }
  EXPECT_GT(refused, 1000) << "the damage should make protobuf refuse many requests";
}

TEST(StructWireTest, NonUtf8StringIsInvalidArgumentNamingTheField) {
  v1::ExecutionRecord record;
  record.set_pipeline_name("p");
  (*record.mutable_output()->mutable_fields())["k"].set_string_value("ok");
  std::string bytes = RequestOf(record.SerializeAsString());
  bytes.replace(bytes.find("ok"), 2, "\xff\xfe");
  internal::RecordExecutionsRequestWire wire;
  ASSERT_TRUE(wire.ParseFromString(bytes));
  auto input = ValidateExecutionRecord(wire.records(0), "records[0]", ExecutionRecordLimits(),
                                       absl::Now(), kStructDepthBudgetInBatch);
  ASSERT_FALSE(input.ok());
  EXPECT_EQ(input.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(input.status().message()),
              ::testing::StartsWith("records[0].output: a key or string is not UTF-8"));
}

}  // namespace
}  // namespace elexirion::api
