#include "server/api/execution_record.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "server/api/proto_json.h"
#include "server/api/struct_wire.h"
#include "server/api/validation.h"
#include "server/common/status_macros.h"

namespace elexirion::api {
namespace {

// Longest execution we believe (a week): anything longer is a unit mistake.
constexpr int64_t kMaxDurationSeconds = 7 * 24 * 3600;
// Earliest record time accepted (2000-01-01): older values are unset-field mistakes.
constexpr int64_t kMinTimeSeconds = 946684800;

absl::Status Field(const std::string& where, const char* field, const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat(where, ".", field, ": ", problem));
}


// The checks shared by both record forms; `to_text` turns one of the record's Struct fields
// into canonical JSON text. The size limit counts the record's bytes as sent (for the wire
// form, a Struct sent in several pieces counts every piece).
template <typename Record, typename ToText>
absl::StatusOr<learning::ExecutionInput> ValidateRecord(const Record& record,
                                                        const std::string& where,
                                                        const ExecutionRecordLimits& limits,
                                                        absl::Time now, ToText to_text) {
  const size_t bytes = record.ByteSizeLong();
  if (static_cast<int64_t>(bytes) > limits.max_record_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": ", bytes, " bytes, larger than the limit of ",
                     limits.max_record_bytes, " (learning.max_record_bytes)"));
  }
  learning::ExecutionInput out;
  RETURN_IF_ERROR(
      ValidateResourceName(absl::StrCat(where, ".pipeline_name"), record.pipeline_name()));
  out.pipeline_name = record.pipeline_name();
  if (record.program_version() < 0) {
    return Field(where, "program_version", "must be >= 0");
  }
  out.program_version = record.program_version();
  out.success = record.success();
  if (record.has_duration()) {
    const auto& d = record.duration();
    if (d.seconds() < 0 || d.nanos() < 0 || d.nanos() > 999'999'999) {
      return Field(where, "duration", "must be a non-negative duration");
    }
    if (d.seconds() > kMaxDurationSeconds) {
      return Field(where, "duration", absl::StrCat("longer than a week (", d.seconds(), " s)"));
    }
    out.duration_seconds = static_cast<double>(d.seconds()) + d.nanos() / 1e9;
  }
  if (record.has_quality_score()) {
    const double q = record.quality_score();
    if (!std::isfinite(q) || q < 0 || q > 10) {
      return Field(where, "quality_score", absl::StrCat("must be in 0..10, got ", q));
    }
    out.quality_score = q;
  }
  if (record.has_time()) {
    const auto& t = record.time();
    if (t.seconds() < kMinTimeSeconds || t.nanos() < 0 || t.nanos() > 999'999'999) {
      return Field(where, "time", "must be a timestamp after 2000-01-01");
    }
    out.time = absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
    if (out.time > now + limits.max_clock_skew) {
      return Field(where, "time",
                   absl::StrCat("is in the future (", absl::FormatTime(out.time), ")"));
    }
  }
  if (!record.record_id().empty()) {
    const std::string& id = record.record_id();
    const bool valid = id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
                         return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
                                c == '.' || c == ':' || c == '/' || c == '-';
                       });
    if (!valid) {
      return Field(where, "record_id", "must match [A-Za-z0-9_.:/-]{1,128}");
    }
    out.record_id = record.record_id();
  }
  auto input = to_text(record.input());
  if (!input.ok()) return Field(where, "input", std::string(input.status().message()));
  out.input_json = *std::move(input);
  auto output = to_text(record.output());
  if (!output.ok()) return Field(where, "output", std::string(output.status().message()));
  out.output_json = *std::move(output);
  auto metadata = to_text(record.metadata());
  if (!metadata.ok()) return Field(where, "metadata", std::string(metadata.status().message()));
  out.metadata_json = *std::move(metadata);
  return out;
}

}  // namespace

absl::StatusOr<learning::ExecutionInput> ValidateExecutionRecord(
    const v1::ExecutionRecord& record, const std::string& where,
    const ExecutionRecordLimits& limits, absl::Time now) {
  return ValidateRecord(record, where, limits, now, [](const google::protobuf::Struct& value) {
    return StructToJsonText(value);
  });
}

absl::StatusOr<learning::ExecutionInput> ValidateExecutionRecord(
    const internal::ExecutionRecordWire& record, const std::string& where,
    const ExecutionRecordLimits& limits, absl::Time now, int struct_depth_budget) {
  return ValidateRecord(
      record, where, limits, now,
      [struct_depth_budget](const google::protobuf::RepeatedPtrField<std::string>& pieces) {
        return StructWireToJsonText(pieces, struct_depth_budget);
      });
}

}  // namespace elexirion::api
