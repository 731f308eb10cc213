#include "server/store/store_util.h"

#include <unistd.h>

#include <algorithm>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "server/common/status_macros.h"
#include "server/store/store.h"

namespace elexirion::store {
namespace {

constexpr absl::string_view kTokenVersion = "p1";

// FNV-1a 64: stable across processes and builds (unlike absl::Hash), which tokens need.
std::string Fingerprint(absl::string_view kind, absl::string_view filter) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](absl::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0xff;  // separator, so ("ab","c") != ("a","bc")
    h *= 1099511628211ull;
  };
  mix(kind);
  mix(filter);
  return absl::StrCat(absl::Hex(h, absl::kZeroPad16));
}

absl::Status BadToken(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("page_token: ", why));
}

}  // namespace

bool IsLeaseLost(const absl::Status& status) { return status.code() == absl::StatusCode::kAborted; }

std::string NewStoreId(int length) {
  static absl::Mutex mu(absl::kConstInit);
  static std::mt19937_64* rng ABSL_GUARDED_BY(mu) = nullptr;
  static pid_t seeded_pid ABSL_GUARDED_BY(mu) = 0;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(static_cast<size_t>(length), '0');
  absl::MutexLock lock(&mu);
  const pid_t pid = getpid();
  if (rng == nullptr || pid != seeded_pid) {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), static_cast<unsigned>(pid)};
    delete rng;
    rng = new std::mt19937_64(seq);
    seeded_pid = pid;
  }
  uint64_t bits = 0;
  for (int i = 0; i < length; ++i) {
    if (i % 16 == 0) bits = (*rng)();
    id[i] = kHex[bits & 0xf];
    bits >>= 4;
  }
  return id;
}

int NormalizePageSize(int page_size) {
  if (page_size <= 0) return kDefaultPageSize;
  return std::min(page_size, kMaxPageSize);
}

absl::Status CheckSchemaVersion(absl::string_view database, int version, int known) {
  if (version == known) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      database, " is at schema version ", version, ", this binary's is ", known,
      version < known ? ": start elexirion-server (it migrates the database) first"
                      : ": use the newer binary that wrote it"));
}

absl::Status LeaseLostError(absl::string_view job_id, absl::string_view detail) {
  return absl::AbortedError(absl::StrCat("lease lost on job ", job_id, ": ", detail));
}

absl::Time TruncateToMicros(absl::Time t) {
  if (t == absl::InfiniteFuture() || t == absl::InfinitePast()) return t;
  return absl::FromUnixMicros(absl::ToUnixMicros(t));
}

std::string EncodePageToken(absl::string_view kind, absl::string_view filter,
                            const std::vector<std::string>& keys) {
  // Netstring-style fields ("<len>:<bytes>") keep arbitrary bytes in keys unambiguous.
  std::string raw(kTokenVersion);
  auto add = [&raw](absl::string_view field) { absl::StrAppend(&raw, field.size(), ":", field); };
  add(Fingerprint(kind, filter));
  for (const auto& k : keys) add(k);
  return absl::WebSafeBase64Escape(raw);
}

absl::StatusOr<std::vector<std::string>> DecodePageToken(absl::string_view token,
                                                         absl::string_view kind,
                                                         absl::string_view filter,
                                                         size_t num_keys) {
  if (token.size() > 4096) return BadToken("too long");
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) return BadToken("not a page token");
  absl::string_view rest(raw);
  if (!absl::ConsumePrefix(&rest, kTokenVersion)) return BadToken("not a page token");
  std::vector<std::string> fields;
  while (!rest.empty()) {
    size_t colon = rest.find(':');
    size_t len = 0;
    if (colon == absl::string_view::npos || colon == 0 || colon > 6 ||
        !absl::SimpleAtoi(rest.substr(0, colon), &len) || len > rest.size() - colon - 1) {
      return BadToken("not a page token");
    }
    fields.emplace_back(rest.substr(colon + 1, len));
    rest.remove_prefix(colon + 1 + len);
  }
  if (fields.size() != num_keys + 1) return BadToken("not a page token");
  if (fields[0] != Fingerprint(kind, filter)) {
    return BadToken("issued for a different listing or filter");
  }
  fields.erase(fields.begin());
  return fields;
}

absl::StatusOr<int64_t> PageTokenInt(const std::string& key) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(key, &v)) return BadToken("malformed key");
  return v;
}

absl::Status JobNotFound(absl::string_view id) {
  return absl::NotFoundError(absl::StrCat("job ", id, " not found"));
}

absl::Status ValidateLease(const JobLease& lease) {
  if (lease.job_id.empty()) return absl::InvalidArgumentError("lease.job_id is empty");
  if (lease.worker_id.empty()) return absl::InvalidArgumentError("lease.worker_id is empty");
  return absl::OkStatus();
}

absl::Status ValidateNewJob(const JobRecord& job) {
  if (job.program_name.empty()) return absl::InvalidArgumentError("program_name is empty");
  if (job.state != JobState::kQueued) {
    return absl::InvalidArgumentError("state: a job is created QUEUED");
  }
  return absl::OkStatus();
}

absl::Status ValidateClaim(absl::string_view worker_id, absl::Duration lease) {
  if (worker_id.empty()) return absl::InvalidArgumentError("worker_id is empty");
  if (lease <= absl::ZeroDuration()) return absl::InvalidArgumentError("lease must be > 0");
  return absl::OkStatus();
}

absl::Status ValidateOutcome(const JobLease& lease, const JobOutcome& outcome) {
  RETURN_IF_ERROR(ValidateLease(lease));
  if (!IsTerminal(outcome.state)) {
    return absl::InvalidArgumentError("outcome.state must be kSucceeded, kFailed or kCancelled");
  }
  if (outcome.event.has_value() && outcome.event->kind.empty()) {
    return absl::InvalidArgumentError("outcome.event.kind is empty");
  }
  return absl::OkStatus();
}

absl::Status ValidateEventAppend(absl::string_view job_id, const std::optional<JobLease>& fence,
                                 absl::string_view kind) {
  if (job_id.empty()) return absl::InvalidArgumentError("job_id is empty");
  if (kind.empty()) return absl::InvalidArgumentError("kind is empty");
  if (fence.has_value()) {
    RETURN_IF_ERROR(ValidateLease(*fence));
    if (fence->job_id != job_id) {
      return absl::InvalidArgumentError("fence.job_id differs from job_id");
    }
  }
  return absl::OkStatus();
}

absl::Status FencedWriteError(const JobLease& lease, const std::optional<FencedRow>& row) {
  if (!row.has_value()) return JobNotFound(lease.job_id);
  if (row->state != "running") {
    return LeaseLostError(lease.job_id, absl::StrCat("the job is ", row->state));
  }
  return LeaseLostError(lease.job_id, absl::StrCat("attempt ", row->attempt, " by ",
                                                   row->lease_owner, " holds it (caller: attempt ",
                                                   lease.attempt, " by ", lease.worker_id, ")"));
}

}  // namespace elexirion::store
