// Conversions between store job rows and v1 messages.
#pragma once

#include "absl/status/statusor.h"
#include "elexirion/v1/jobs.pb.h"
#include "server/store/records.h"

namespace elexirion::api {

v1::JobState ToProtoState(store::JobState state);
absl::StatusOr<store::JobState> FromProtoState(v1::JobState state);

// Builds the API view of a stored job (request, progress and result blobs are serialized
// protos). DATA_LOSS when a blob does not parse.
absl::StatusOr<v1::Job> ToProtoJob(const store::JobRecord& record);

google::protobuf::Timestamp ToProtoTime(absl::Time t);

}  // namespace elexirion::api
