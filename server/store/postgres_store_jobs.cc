// PostgresStore: jobs, leases and job events.
#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/status_macros.h"
#include "server/store/postgres_connection.h"
#include "server/store/postgres_store.h"
#include "server/store/store_util.h"

namespace elexirion::store {
namespace {

using pg::Tx;

// Column order read by ReadJob. The list variant leaves out the (possibly large) checkpoint.
#define ELX_JOB_COLUMNS_BEFORE_CHECKPOINT \
  "id, request_id, program_name, optimizer, state, request, result, progress, "
#define ELX_JOB_COLUMNS_AFTER_CHECKPOINT                                            \
  ", end_reason, error, attempt, lease_owner, lease_expires_at, cancel_requested, " \
  "run_after, created_at, started_at, ended_at, last_event_seq"
constexpr char kJobColumns[] =
    ELX_JOB_COLUMNS_BEFORE_CHECKPOINT "checkpoint" ELX_JOB_COLUMNS_AFTER_CHECKPOINT;
constexpr char kJobListColumns[] =
    ELX_JOB_COLUMNS_BEFORE_CHECKPOINT "NULL::bytea" ELX_JOB_COLUMNS_AFTER_CHECKPOINT;
#undef ELX_JOB_COLUMNS_BEFORE_CHECKPOINT
#undef ELX_JOB_COLUMNS_AFTER_CHECKPOINT

// The WHERE clause of every fenced write: $1 id, $2 worker, $3 attempt.
constexpr char kFence[] = "id = $1 AND state = 'running' AND lease_owner = $2 AND attempt = $3";

absl::StatusOr<JobRecord> ReadJob(const pqxx::row& r) {
  JobRecord j;
  j.id = pg::Text(r[0]);
  j.request_id = pg::Text(r[1]);
  j.program_name = pg::Text(r[2]);
  j.optimizer = pg::Text(r[3]);
  std::string state = pg::Text(r[4]);
  if (!ParseJobState(state, &j.state)) {
    return absl::DataLossError(absl::StrCat("job ", j.id, " has unknown state '", state, "'"));
  }
  j.request = pg::Bytes(r[5]);
  j.result = pg::Bytes(r[6]);
  j.progress = pg::Bytes(r[7]);
  j.checkpoint = pg::Bytes(r[8]);
  j.end_reason = pg::Text(r[9]);
  j.error = pg::Text(r[10]);
  j.attempt = pg::Int(r[11]);
  j.lease_owner = pg::Text(r[12]);
  j.lease_expires_at = pg::TimeOf(r[13]);
  j.cancel_requested = pg::Bool(r[14]);
  j.run_after = pg::TimeOf(r[15]);
  j.created_at = pg::TimeOf(r[16]);
  j.started_at = pg::TimeOf(r[17]);
  j.ended_at = pg::TimeOf(r[18]);
  j.last_event_seq = pg::Int(r[19]);
  return j;
}

// The first job row of `result`, if any.
absl::StatusOr<std::optional<JobRecord>> FirstJob(const pqxx::result& result) {
  if (result.empty()) return std::nullopt;
  ASSIGN_OR_RETURN(JobRecord job, ReadJob(result[0]));
  return job;
}

// Called after a fenced write matched no row: NOT_FOUND or lease lost.
absl::Status FenceFailure(Tx& tx, const JobLease& lease) {
  pqxx::result r =
      tx.Exec("SELECT state, lease_owner, attempt FROM jobs WHERE id = $1", lease.job_id);
  if (r.empty()) return FencedWriteError(lease, std::nullopt);
  return FencedWriteError(lease, FencedRow{pg::Text(r[0][0]), pg::Text(r[0][1]), pg::Int(r[0][2])});
}

// Appends one event inside the caller's transaction and notifies kJobEventsChannel (delivered
// at commit). With `bump` the job's last_event_seq is incremented here; without, the caller
// just did. `fence` (with bump) makes the increment a fenced write. Returns the event's seq,
// or nullopt when no job row matched.
absl::StatusOr<std::optional<int64_t>> InsertEvent(Tx& tx, const std::string& job_id, bool bump,
                                                   const JobLease* fence, const std::string& kind,
                                                   const std::string& payload, absl::Time now) {
  // One statement: the job row (bumped or not), the event, and the notification.
  static const std::string kBump = absl::StrCat(
      "WITH j AS (UPDATE jobs SET last_event_seq = last_event_seq + 1 WHERE id = $1 "
      "RETURNING id, last_event_seq) "
      "INSERT INTO job_events (job_id, seq, kind, payload, time) "
      "SELECT j.id, j.last_event_seq, $2, $3, $4 FROM j, LATERAL (SELECT pg_notify('",
      kJobEventsChannel, "', j.id)) n RETURNING seq");
  static const std::string kFencedBump =
      absl::StrCat("WITH j AS (UPDATE jobs SET last_event_seq = last_event_seq + 1 WHERE ", kFence,
                   " RETURNING id, last_event_seq) "
                   "INSERT INTO job_events (job_id, seq, kind, payload, time) "
                   "SELECT j.id, j.last_event_seq, $4, $5, $6 FROM j, LATERAL (SELECT pg_notify('",
                   kJobEventsChannel, "', j.id)) n RETURNING seq");
  static const std::string kNoBump = absl::StrCat(
      "INSERT INTO job_events (job_id, seq, kind, payload, time) "
      "SELECT j.id, j.last_event_seq, $2, $3, $4 FROM jobs j, LATERAL (SELECT pg_notify('",
      kJobEventsChannel, "', j.id)) n WHERE j.id = $1 RETURNING seq");
  pqxx::result r;
  if (fence != nullptr) {
    r = tx.Exec(kFencedBump, fence->job_id, fence->worker_id, fence->attempt, kind,
                pg::Blob(payload), pg::Micros(now));
  } else {
    r = tx.Exec(bump ? kBump : kNoBump, job_id, kind, pg::Blob(payload), pg::Micros(now));
  }
  if (r.empty()) return std::nullopt;
  return pg::Int(r[0][0]);
}

absl::Status ValidateStates(const std::vector<JobState>& states) {
  for (JobState s : states) {
    if (absl::string_view(JobStateName(s)) == "unknown") {
      return absl::InvalidArgumentError(
          absl::StrCat("states: unknown job state ", static_cast<int>(s)));
    }
  }
  return absl::OkStatus();
}

// Sorted, deduplicated state names.
std::vector<std::string> StateNames(const std::vector<JobState>& states) {
  std::vector<std::string> names;
  for (JobState s : states) names.emplace_back(JobStateName(s));
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::string StatesArray(const std::vector<std::string>& names) {
  return pg::TextArray(std::vector<std::optional<std::string>>(names.begin(), names.end()));
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Jobs

absl::StatusOr<JobRecord> PostgresStore::CreateJob(const JobRecord& job, bool* already_existed,
                                                   const NewJobEvent* first_event) {
  if (already_existed != nullptr) *already_existed = false;
  RETURN_IF_ERROR(ValidateNewJob(job));
  JobRecord fresh;
  fresh.id = job.id.empty() ? NewStoreId(16) : job.id;
  fresh.request_id = job.request_id;
  fresh.program_name = job.program_name;
  fresh.optimizer = job.optimizer;
  fresh.request = job.request;
  fresh.progress = job.progress;
  fresh.run_after = TruncateToMicros(job.run_after);
  fresh.created_at = TruncateToMicros(job.created_at == kUnsetTime ? Now() : job.created_at);

  static const std::string kInsert = absl::StrCat(
      "INSERT INTO jobs (id, request_id, program_name, optimizer, state, request, result, "
      "progress, checkpoint, end_reason, error, attempt, lease_owner, lease_expires_at, "
      "cancel_requested, run_after, created_at, started_at, ended_at, last_event_seq) "
      "VALUES ($1, NULLIF($2, ''), $3, $4, 'queued', $5, ''::bytea, $6, ''::bytea, '', '', 0, "
      "'', NULL, false, $7, $8, NULL, NULL, 0) "
      "ON CONFLICT (request_id) WHERE request_id IS NOT NULL DO NOTHING RETURNING ",
      kJobColumns);
  static const std::string kByRequestId =
      absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE request_id = $1");

  std::optional<JobRecord> out;
  bool existed = false;
  absl::Status status;
  // A generated id that happens to be taken is replaced; a caller's id is ALREADY_EXISTS.
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (attempt > 0) fresh.id = NewStoreId(16);
    status = Write([&](Tx& tx) -> absl::Status {
      existed = false;
      ASSIGN_OR_RETURN(
          out, FirstJob(tx.Exec(kInsert, fresh.id, fresh.request_id, fresh.program_name,
                                fresh.optimizer, pg::Blob(fresh.request), pg::Blob(fresh.progress),
                                pg::Micros(fresh.run_after), pg::Micros(fresh.created_at))));
      if (!out.has_value()) {
        // The request_id is taken (ON CONFLICT waited for its transaction to commit).
        ASSIGN_OR_RETURN(out, FirstJob(tx.Exec(kByRequestId, fresh.request_id)));
        if (!out.has_value()) return absl::InternalError("INSERT ... RETURNING gave no row");
        existed = true;
        return absl::OkStatus();
      }
      if (first_event != nullptr) {
        ASSIGN_OR_RETURN(std::optional<int64_t> seq,
                         InsertEvent(tx, fresh.id, /*bump=*/true, nullptr, first_event->kind,
                                     first_event->payload, fresh.created_at));
        if (!seq.has_value()) return absl::InternalError("the new job vanished");
        out->last_event_seq = *seq;
      }
      return absl::OkStatus();
    });
    if (!absl::IsAlreadyExists(status) || !job.id.empty()) break;
  }
  if (absl::IsAlreadyExists(status)) {
    return absl::AlreadyExistsError(absl::StrCat("job ", fresh.id, " already exists"));
  }
  RETURN_IF_ERROR(status);
  if (already_existed != nullptr) *already_existed = existed;
  return *std::move(out);
}

absl::StatusOr<JobRecord> PostgresStore::GetJob(const std::string& id) {
  static const std::string kGet = absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE id = $1");
  std::optional<JobRecord> out;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(out, FirstJob(tx.Exec(kGet, id)));
    return absl::OkStatus();
  }));
  if (!out.has_value()) return JobNotFound(id);
  return *std::move(out);
}

absl::StatusOr<JobPage> PostgresStore::ListJobs(const JobFilter& filter, int page_size,
                                                const std::string& page_token) {
  RETURN_IF_ERROR(ValidateStates(filter.states));
  const int size = NormalizePageSize(page_size);
  const std::vector<std::string> states = StateNames(filter.states);
  const std::string filter_key = absl::StrCat(absl::StrJoin(states, ","), "|", filter.program_name);
  int64_t cursor_time = std::numeric_limits<int64_t>::max();
  std::string cursor_id;
  if (!page_token.empty()) {
    ASSIGN_OR_RETURN(std::vector<std::string> keys,
                     DecodePageToken(page_token, "jobs", filter_key, 2));
    ASSIGN_OR_RETURN(cursor_time, PageTokenInt(keys[0]));
    cursor_id = keys[1];
  }
  // $1, $2 cursor; $3 limit; $4 program ('' = any); $5 states (NULL = any). The empty cursor
  // id sorts before every id, so the first page starts at created_at < max.
  static const std::string kList = absl::StrCat(
      "SELECT ", kJobListColumns,
      " FROM jobs WHERE (created_at, id) < ($1, $2) AND ($4 = '' OR program_name = $4) AND "
      "($5::text[] IS NULL OR state = ANY($5::text[])) ORDER BY created_at DESC, id DESC "
      "LIMIT $3");
  JobPage page;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    page.jobs.clear();
    pqxx::result r = states.empty() ? tx.Exec(kList, cursor_time, cursor_id, size + 1,
                                              filter.program_name, nullptr)
                                    : tx.Exec(kList, cursor_time, cursor_id, size + 1,
                                              filter.program_name, StatesArray(states));
    for (const auto& row : r) {
      ASSIGN_OR_RETURN(JobRecord job, ReadJob(row));
      page.jobs.push_back(std::move(job));
    }
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.jobs.size()) > size) {
    page.jobs.resize(size);
    const JobRecord& last = page.jobs.back();
    page.next_page_token = EncodePageToken(
        "jobs", filter_key, {absl::StrCat(absl::ToUnixMicros(last.created_at)), last.id});
  }
  return page;
}

absl::StatusOr<int64_t> PostgresStore::CountJobs(const std::vector<JobState>& states) {
  RETURN_IF_ERROR(ValidateStates(states));
  const std::vector<std::string> names = StateNames(states);
  int64_t count = 0;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    pqxx::result r = names.empty()
                         ? tx.Exec("SELECT count(*) FROM jobs")
                         : tx.Exec("SELECT count(*) FROM jobs WHERE state = ANY($1::text[])",
                                   StatesArray(names));
    count = pg::Int(r[0][0]);
    return absl::OkStatus();
  }));
  return count;
}

absl::StatusOr<std::optional<JobRecord>> PostgresStore::ClaimJob(const std::string& worker_id,
                                                                 absl::Duration lease,
                                                                 absl::Time now) {
  RETURN_IF_ERROR(ValidateClaim(worker_id, lease));
  // The oldest runnable candidate of each kind (queued, or running with an expired lease) is
  // locked with FOR UPDATE SKIP LOCKED: rows another claimer holds are skipped rather than
  // waited for, so concurrent claimers on any replica never get the same job and never
  // block each other. The older of the two candidates is claimed (the other's lock ends with
  // the statement's transaction).
  static const std::string kClaim = absl::StrCat(
      "WITH q AS (SELECT id, created_at FROM jobs WHERE state = 'queued' AND "
      "  NOT cancel_requested AND run_after <= $3 ORDER BY created_at, id LIMIT 1 "
      "  FOR UPDATE SKIP LOCKED), "
      "r AS (SELECT id, created_at FROM jobs WHERE state = 'running' AND "
      "  lease_expires_at <= $3 ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED), "
      "pick AS (SELECT id FROM (SELECT * FROM q UNION ALL SELECT * FROM r) c "
      "  ORDER BY created_at, id LIMIT 1) "
      "UPDATE jobs SET state = 'running', lease_owner = $1, lease_expires_at = $2, "
      "attempt = attempt + 1, started_at = coalesce(started_at, $3) "
      "WHERE id = (SELECT id FROM pick) RETURNING ",
      kJobColumns);
  std::optional<JobRecord> out;
  RETURN_IF_ERROR(WriteOne([&](Tx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(
        out, FirstJob(tx.Exec(kClaim, worker_id, pg::Micros(now + lease), pg::Micros(now))));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<HeartbeatResult> PostgresStore::HeartbeatJob(const JobLease& lease,
                                                            absl::Time new_expiry) {
  RETURN_IF_ERROR(ValidateLease(lease));
  static const std::string kHeartbeat =
      absl::StrCat("UPDATE jobs SET lease_expires_at = $4 WHERE ", kFence,
                   " RETURNING cancel_requested, lease_expires_at");
  HeartbeatResult out;
  RETURN_IF_ERROR(WriteOne([&](Tx& tx) -> absl::Status {
    pqxx::result r =
        tx.Exec(kHeartbeat, lease.job_id, lease.worker_id, lease.attempt, pg::Micros(new_expiry));
    if (r.empty()) return FenceFailure(tx, lease);
    out.cancel_requested = pg::Bool(r[0][0]);
    out.lease_expires_at = pg::TimeOf(r[0][1]);
    return absl::OkStatus();
  }));
  return out;
}

absl::Status PostgresStore::CheckpointJob(const JobLease& lease, const std::string& checkpoint,
                                          const std::string& progress) {
  RETURN_IF_ERROR(ValidateLease(lease));
  static const std::string kCheckpoint =
      absl::StrCat("UPDATE jobs SET checkpoint = $4, progress = $5 WHERE ", kFence);
  return WriteOne([&](Tx& tx) -> absl::Status {
    pqxx::result r = tx.Exec(kCheckpoint, lease.job_id, lease.worker_id, lease.attempt,
                             pg::Blob(checkpoint), pg::Blob(progress));
    if (r.affected_rows() == 1) return absl::OkStatus();
    return FenceFailure(tx, lease);
  });
}

absl::StatusOr<JobRecord> PostgresStore::FinishJob(const JobLease& lease, const JobOutcome& outcome,
                                                   absl::Time now) {
  RETURN_IF_ERROR(ValidateOutcome(lease, outcome));
  // One statement (no BEGIN/COMMIT round trips): the fenced update, and with $11 = 1 the
  // terminal event and its notification. $8: keep the stored progress when false; $9 the
  // new one.
  static const std::string kFinish = absl::StrCat(
      "WITH u AS (UPDATE jobs SET state = $4, result = $5, end_reason = $6, error = $7, "
      "progress = CASE WHEN $8 THEN $9 ELSE progress END, ended_at = $10, "
      "lease_expires_at = NULL, last_event_seq = last_event_seq + $11 WHERE ",
      kFence, " RETURNING ", kJobColumns,
      "), e AS (INSERT INTO job_events (job_id, seq, kind, payload, time) "
      "SELECT u.id, u.last_event_seq, $12, $13, $10 FROM u, LATERAL (SELECT pg_notify('",
      kJobEventsChannel, "', u.id)) n WHERE $11 = 1) SELECT * FROM u");
  std::optional<JobRecord> out;
  const bool has_event = outcome.event.has_value();
  RETURN_IF_ERROR(WriteOne([&](Tx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(
        out, FirstJob(tx.Exec(kFinish, lease.job_id, lease.worker_id, lease.attempt,
                              std::string(JobStateName(outcome.state)), pg::Blob(outcome.result),
                              outcome.end_reason, outcome.error, outcome.progress.has_value(),
                              pg::Blob(outcome.progress.value_or("")), pg::Micros(now),
                              has_event ? 1 : 0, has_event ? outcome.event->kind : std::string(),
                              pg::Blob(has_event ? outcome.event->payload : std::string()))));
    if (!out.has_value()) return FenceFailure(tx, lease);
    return absl::OkStatus();
  }));
  return *std::move(out);
}

absl::StatusOr<JobRecord> PostgresStore::ReleaseJob(const JobLease& lease, absl::Time run_after,
                                                    const std::string& error, absl::Time now) {
  RETURN_IF_ERROR(ValidateLease(lease));
  static const std::string kRelease = absl::StrCat(
      "UPDATE jobs SET "
      "state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END, "
      "ended_at = CASE WHEN cancel_requested THEN $6::bigint ELSE NULL END, "
      "end_reason = CASE WHEN cancel_requested THEN $7 ELSE end_reason END, "
      "run_after = $4, error = $5, lease_owner = '', lease_expires_at = NULL WHERE ",
      kFence, " RETURNING ", kJobColumns);
  std::optional<JobRecord> out;
  RETURN_IF_ERROR(Write([&](Tx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(out, FirstJob(tx.Exec(kRelease, lease.job_id, lease.worker_id, lease.attempt,
                                           pg::Micros(run_after), error, pg::Micros(now),
                                           std::string(kEndReasonCancelled))));
    if (!out.has_value()) return FenceFailure(tx, lease);
    return absl::OkStatus();
  }));
  return *std::move(out);
}

absl::StatusOr<JobRecord> PostgresStore::RequestCancel(const std::string& id, absl::Time now) {
  static const std::string kCancelQueued = absl::StrCat(
      "UPDATE jobs SET state = 'cancelled', cancel_requested = true, ended_at = $2, "
      "end_reason = $3 WHERE id = $1 RETURNING ",
      kJobColumns);
  static const std::string kCancelRunning =
      absl::StrCat("UPDATE jobs SET cancel_requested = true WHERE id = $1 RETURNING ", kJobColumns);
  std::optional<JobRecord> out;
  RETURN_IF_ERROR(Write([&](Tx& tx) -> absl::Status {
    // FOR UPDATE: a claim or finish cannot change the state between the check and the update.
    pqxx::result r = tx.Exec("SELECT state FROM jobs WHERE id = $1 FOR UPDATE", id);
    if (r.empty()) return JobNotFound(id);
    const std::string state = pg::Text(r[0][0]);
    if (state == "queued") {
      ASSIGN_OR_RETURN(out, FirstJob(tx.Exec(kCancelQueued, id, pg::Micros(now),
                                             std::string(kEndReasonCancelled))));
    } else if (state == "running") {
      ASSIGN_OR_RETURN(out, FirstJob(tx.Exec(kCancelRunning, id)));
    } else {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", id, " already ended (", state, ")"));
    }
    if (!out.has_value()) return absl::InternalError("UPDATE ... RETURNING gave no row");
    return absl::OkStatus();
  }));
  return *std::move(out);
}

absl::StatusOr<int64_t> PostgresStore::PruneJobs(absl::Time ended_before, int limit) {
  if (limit <= 0) limit = 1000;
  int64_t deleted = 0;
  RETURN_IF_ERROR(WriteOne([&](Tx& tx) -> absl::Status {
    pqxx::result r = tx.Exec(
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE ended_at < $1 AND state IN "
        "('succeeded', 'failed', 'cancelled') LIMIT $2 FOR UPDATE SKIP LOCKED)",
        pg::Micros(ended_before), limit);
    deleted = r.affected_rows();
    return absl::OkStatus();
  }));
  return deleted;
}

// ---------------------------------------------------------------------------------------
// Job events

absl::StatusOr<int64_t> PostgresStore::AppendJobEvent(const std::string& job_id,
                                                      const std::optional<JobLease>& fence,
                                                      const std::string& kind,
                                                      const std::string& payload, absl::Time now) {
  RETURN_IF_ERROR(ValidateEventAppend(job_id, fence, kind));
  int64_t seq = 0;
  RETURN_IF_ERROR(WriteOne([&](Tx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(
        std::optional<int64_t> appended,
        InsertEvent(tx, job_id, /*bump=*/true, fence ? &*fence : nullptr, kind, payload, now));
    if (!appended.has_value()) {
      return fence.has_value() ? FenceFailure(tx, *fence) : JobNotFound(job_id);
    }
    seq = *appended;
    return absl::OkStatus();
  }));
  return seq;
}

absl::StatusOr<std::vector<JobEventRecord>> PostgresStore::ListJobEvents(const std::string& job_id,
                                                                         int64_t after_seq,
                                                                         int limit) {
  if (limit <= 0) limit = 1000;
  std::vector<JobEventRecord> events;
  bool job_exists = true;
  RETURN_IF_ERROR(Read([&](Tx& tx) -> absl::Status {
    events.clear();
    pqxx::result r = tx.Exec(
        "SELECT seq, kind, payload, time FROM job_events WHERE job_id = $1 AND seq > $2 "
        "ORDER BY seq LIMIT $3",
        job_id, after_seq, limit);
    for (const auto& row : r) {
      JobEventRecord e;
      e.job_id = job_id;
      e.seq = pg::Int(row[0]);
      e.kind = pg::Text(row[1]);
      e.payload = pg::Bytes(row[2]);
      e.time = pg::TimeOf(row[3]);
      events.push_back(std::move(e));
    }
    if (events.empty()) {
      job_exists = !tx.Exec("SELECT 1 FROM jobs WHERE id = $1", job_id).empty();
    }
    return absl::OkStatus();
  }));
  if (!job_exists) return JobNotFound(job_id);
  return events;
}

}  // namespace elexirion::store
