// Helpers shared by Store backends (not part of the Store interface).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/store/records.h"

namespace elexirion::store {

// page_size <= 0 -> kDefaultPageSize; > kMaxPageSize -> kMaxPageSize.
int NormalizePageSize(int page_size);

// The ABORTED status of a fenced write whose lease is gone.
// OK when a database at schema `version` is the one this binary (`known`) expects; else
// FAILED_PRECONDITION naming `database` and what to do (for stores opened without migrating).
absl::Status CheckSchemaVersion(absl::string_view database, int version, int known);

absl::Status LeaseLostError(absl::string_view job_id, absl::string_view detail);

// Argument checks and errors of the job methods, the same on every backend (INVALID_ARGUMENT
// naming the field, NOT_FOUND, ABORTED lease lost), so backends differ only in their SQL.
absl::Status JobNotFound(absl::string_view id);
absl::Status ValidateLease(const JobLease& lease);
absl::Status ValidateNewJob(const JobRecord& job);
absl::Status ValidateClaim(absl::string_view worker_id, absl::Duration lease);
absl::Status ValidateOutcome(const JobLease& lease, const JobOutcome& outcome);
absl::Status ValidateEventAppend(absl::string_view job_id, const std::optional<JobLease>& fence,
                                 absl::string_view kind);
// The error of a fenced write that matched no row, from the job row read afterwards (state,
// lease owner and attempt; nullopt when the job does not exist).
struct FencedRow {
  std::string state;
  std::string lease_owner;
  int64_t attempt = 0;
};
absl::Status FencedWriteError(const JobLease& lease, const std::optional<FencedRow>& row);

// A random lowercase hex id of `length` characters for store-generated keys. Unlike
// RandomHexId it re-seeds after fork(), so processes forked from one parent never generate
// the same ids. Thread safe.
std::string NewStoreId(int length);

// Truncates to the stored precision (microseconds).
absl::Time TruncateToMicros(absl::Time t);

// Page tokens: opaque (web-safe base64 of a small JSON array), versioned, and bound to the
// listing `kind` and a fingerprint of its `filter` (any canonical string the backend builds
// from the request's filter fields), so a token replayed against another listing or filter is
// INVALID_ARGUMENT rather than silently wrong. `keys` are the keyset values of the last row.
std::string EncodePageToken(absl::string_view kind, absl::string_view filter,
                            const std::vector<std::string>& keys);
// INVALID_ARGUMENT ("page_token ...") for garbage, another kind or filter, or a key count
// other than `num_keys`.
absl::StatusOr<std::vector<std::string>> DecodePageToken(absl::string_view token,
                                                         absl::string_view kind,
                                                         absl::string_view filter, size_t num_keys);
// Parses an integer key of a decoded token (INVALID_ARGUMENT when it is not one).
absl::StatusOr<int64_t> PageTokenInt(const std::string& key);

}  // namespace elexirion::store
