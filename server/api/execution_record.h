// Validation of ExecutionRecord messages (TelemetryService): each problem is
// INVALID_ARGUMENT naming the field under `where` ("records[3].quality_score: ...").
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "elexirion/internal/record_wire.pb.h"
#include "elexirion/v1/telemetry.pb.h"
#include "server/learning/execution_ingestor.h"

namespace elexirion::api {

struct ExecutionRecordLimits {
  // Serialized size of one record.
  int64_t max_record_bytes = 256 << 10;
  // Record times later than now + this are refused (clock skew allowance).
  absl::Duration max_clock_skew = absl::Minutes(10);
};

absl::StatusOr<learning::ExecutionInput> ValidateExecutionRecord(
    const v1::ExecutionRecord& record, const std::string& where,
    const ExecutionRecordLimits& limits, absl::Time now);

// Nested messages protobuf still allows inside a record's Struct (its recursion limit, 100,
// less the messages around the Struct): a record of a RecordExecutionsRequest, or a record
// that is the message itself (StreamExecutions).
inline constexpr int kStructDepthBudgetInBatch = 98;
inline constexpr int kStructDepthBudgetInStream = 99;

// The same checks and result for a record parsed with its Structs left as wire bytes
// (record_wire.proto); bytes protobuf would refuse as a Struct are INVALID_ARGUMENT naming
// the field.
absl::StatusOr<learning::ExecutionInput> ValidateExecutionRecord(
    const internal::ExecutionRecordWire& record, const std::string& where,
    const ExecutionRecordLimits& limits, absl::Time now, int struct_depth_budget);

}  // namespace elexirion::api
