// SqliteStore: jobs, leases and job events.
#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/status_macros.h"
#include "server/store/sqlite_connection.h"
#include "server/store/sqlite_store.h"
#include "server/store/store_util.h"

namespace elexirion::store {
namespace {

using sqlite::Connection;
using sqlite::Stmt;

constexpr int kMaxJobStates = 5;

// Column order read by ReadJob. The list variant leaves out the (possibly large) checkpoint.
#define ELX_JOB_COLUMNS_BEFORE_CHECKPOINT \
  "id, request_id, program_name, optimizer, state, request, result, progress, "
#define ELX_JOB_COLUMNS_AFTER_CHECKPOINT                                            \
  ", end_reason, error, attempt, lease_owner, lease_expires_at, cancel_requested, " \
  "run_after, created_at, started_at, ended_at, last_event_seq"
constexpr char kJobColumns[] =
    ELX_JOB_COLUMNS_BEFORE_CHECKPOINT "checkpoint" ELX_JOB_COLUMNS_AFTER_CHECKPOINT;
constexpr char kJobListColumns[] =
    ELX_JOB_COLUMNS_BEFORE_CHECKPOINT "NULL" ELX_JOB_COLUMNS_AFTER_CHECKPOINT;
#undef ELX_JOB_COLUMNS_BEFORE_CHECKPOINT
#undef ELX_JOB_COLUMNS_AFTER_CHECKPOINT

// The WHERE clause of every fenced write: ?1 id, ?2 worker, ?3 attempt.
constexpr char kFence[] = "id = ?1 AND state = 'running' AND lease_owner = ?2 AND attempt = ?3";

absl::StatusOr<JobRecord> ReadJob(const Stmt& s) {
  JobRecord j;
  j.id = s.ColumnText(0);
  j.request_id = s.ColumnText(1);
  j.program_name = s.ColumnText(2);
  j.optimizer = s.ColumnText(3);
  std::string state = s.ColumnText(4);
  if (!ParseJobState(state, &j.state)) {
    return absl::DataLossError(absl::StrCat("job ", j.id, " has unknown state '", state, "'"));
  }
  j.request = s.ColumnBlob(5);
  j.result = s.ColumnBlob(6);
  j.progress = s.ColumnBlob(7);
  j.checkpoint = s.ColumnBlob(8);
  j.end_reason = s.ColumnText(9);
  j.error = s.ColumnText(10);
  j.attempt = s.ColumnInt(11);
  j.lease_owner = s.ColumnText(12);
  j.lease_expires_at = s.ColumnTime(13);
  j.cancel_requested = s.ColumnInt(14) != 0;
  j.run_after = s.ColumnTime(15);
  j.created_at = s.ColumnTime(16);
  j.started_at = s.ColumnTime(17);
  j.ended_at = s.ColumnTime(18);
  j.last_event_seq = s.ColumnInt(19);
  return j;
}

// Steps `s` expecting at most one job row.
absl::StatusOr<std::optional<JobRecord>> StepJob(Stmt& s) {
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::nullopt;
  ASSIGN_OR_RETURN(JobRecord job, ReadJob(s));
  return job;
}

// Binds ?1..?3 of kFence.
void BindFence(Stmt& s, const JobLease& lease) {
  s.BindText(1, lease.job_id).BindText(2, lease.worker_id).BindInt(3, lease.attempt);
}

// Called after a fenced write matched no row: NOT_FOUND or lease lost.
absl::Status FenceFailure(Connection& c, const JobLease& lease) {
  ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT state, lease_owner, attempt FROM jobs WHERE id = ?1"));
  s.BindText(1, lease.job_id);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return FencedWriteError(lease, std::nullopt);
  return FencedWriteError(lease, FencedRow{s.ColumnText(0), s.ColumnText(1), s.ColumnInt(2)});
}

// Appends one event inside the caller's write transaction; the job row's last_event_seq was
// just incremented to `seq` (or is incremented here when `bump` is true).
absl::StatusOr<int64_t> InsertEvent(Connection& c, const std::string& job_id, bool bump,
                                    const std::string& kind, const std::string& payload,
                                    absl::Time now) {
  int64_t seq = 0;
  if (bump) {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("UPDATE jobs SET last_event_seq = last_event_seq + 1 "
                                       "WHERE id = ?1 RETURNING last_event_seq"));
    s.BindText(1, job_id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return JobNotFound(job_id);
    seq = s.ColumnInt(0);
  } else {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT last_event_seq FROM jobs WHERE id = ?1"));
    s.BindText(1, job_id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return JobNotFound(job_id);
    seq = s.ColumnInt(0);
  }
  ASSIGN_OR_RETURN(Stmt ins, c.Prepare("INSERT INTO job_events (job_id, seq, kind, payload, "
                                       "time) VALUES (?1, ?2, ?3, ?4, ?5)"));
  ins.BindText(1, job_id).BindInt(2, seq).BindText(3, kind).BindBlob(4, payload).BindTime(5, now);
  RETURN_IF_ERROR(ins.Run());
  return seq;
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

// Sorted, deduplicated state names: bound into a fixed "state IN (?a..?e)" list (padded with
// repeats) so one cached statement serves every combination.
std::vector<std::string> StateNames(const std::vector<JobState>& states) {
  std::vector<std::string> names;
  for (JobState s : states) names.emplace_back(JobStateName(s));
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

// `state = ?n` for one state (lets the planner use jobs_by_state's order), else an IN list.
std::string StatesInClause(int first_param, size_t num_states) {
  if (num_states == 1) return absl::StrCat("state = ?", first_param);
  std::vector<std::string> params;
  for (int i = 0; i < kMaxJobStates; ++i) params.push_back(absl::StrCat("?", first_param + i));
  return absl::StrCat("state IN (", absl::StrJoin(params, ", "), ")");
}

void BindStates(Stmt& s, int first_param, const std::vector<std::string>& names) {
  const int n = names.size() == 1 ? 1 : kMaxJobStates;
  for (int i = 0; i < n; ++i) {
    s.BindText(first_param + i, names[std::min<size_t>(i, names.size() - 1)]);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Jobs

absl::StatusOr<JobRecord> SqliteStore::CreateJob(const JobRecord& job, bool* already_existed,
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

  std::optional<JobRecord> out;
  bool existed = false;
  absl::Status status;
  // A generated id that happens to be taken is replaced; a caller's id is ALREADY_EXISTS.
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (attempt > 0) fresh.id = NewStoreId(16);
    status = Write([&](Connection& c) -> absl::Status {
      if (!fresh.request_id.empty()) {
        ASSIGN_OR_RETURN(Stmt s, c.Prepare(absl::StrCat("SELECT ", kJobColumns,
                                                        " FROM jobs WHERE request_id = ?1")));
        s.BindText(1, fresh.request_id);
        ASSIGN_OR_RETURN(out, StepJob(s));
        if (out.has_value()) {
          existed = true;
          return absl::OkStatus();
        }
      }
      ASSIGN_OR_RETURN(
          Stmt s, c.Prepare(absl::StrCat(
                      "INSERT INTO jobs (id, request_id, program_name, optimizer, state, request, "
                      "result, progress, checkpoint, end_reason, error, attempt, lease_owner, "
                      "lease_expires_at, cancel_requested, run_after, created_at, started_at, "
                      "ended_at, last_event_seq) VALUES (?1, ?2, ?3, ?4, 'queued', ?5, x'', ?6, "
                      "x'', '', '', 0, '', NULL, 0, ?7, ?8, NULL, NULL, 0) RETURNING ",
                      kJobColumns)));
      s.BindText(1, fresh.id)
          .BindTextOrNull(2, fresh.request_id)
          .BindText(3, fresh.program_name)
          .BindText(4, fresh.optimizer)
          .BindBlob(5, fresh.request)
          .BindBlob(6, fresh.progress)
          .BindTime(7, fresh.run_after)
          .BindTime(8, fresh.created_at);
      ASSIGN_OR_RETURN(out, StepJob(s));
      if (!out.has_value()) return absl::InternalError("INSERT ... RETURNING gave no row");
      if (first_event != nullptr) {
        ASSIGN_OR_RETURN(out->last_event_seq,
                         InsertEvent(c, fresh.id, /*bump=*/true, first_event->kind,
                                     first_event->payload, fresh.created_at));
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

absl::StatusOr<JobRecord> SqliteStore::GetJob(const std::string& id) {
  std::optional<JobRecord> out;
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s,
                     c.Prepare(absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE id = ?1")));
    s.BindText(1, id);
    ASSIGN_OR_RETURN(out, StepJob(s));
    return absl::OkStatus();
  }));
  if (!out.has_value()) return JobNotFound(id);
  return *std::move(out);
}

absl::StatusOr<JobPage> SqliteStore::ListJobs(const JobFilter& filter, int page_size,
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
  // ?1, ?2 cursor; ?3 limit; ?4 program; ?5.. states.
  std::string sql =
      absl::StrCat("SELECT ", kJobListColumns, " FROM jobs WHERE (created_at, id) < (?1, ?2)");
  if (!filter.program_name.empty()) absl::StrAppend(&sql, " AND program_name = ?4");
  if (!states.empty()) absl::StrAppend(&sql, " AND ", StatesInClause(5, states.size()));
  absl::StrAppend(&sql, " ORDER BY created_at DESC, id DESC LIMIT ?3");

  JobPage page;
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare(sql));
    s.BindInt(1, cursor_time).BindText(2, cursor_id).BindInt(3, size + 1);
    if (!filter.program_name.empty()) s.BindText(4, filter.program_name);
    if (!states.empty()) BindStates(s, 5, states);
    while (true) {
      ASSIGN_OR_RETURN(std::optional<JobRecord> job, StepJob(s));
      if (!job.has_value()) break;
      page.jobs.push_back(*std::move(job));
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

absl::StatusOr<int64_t> SqliteStore::CountJobs(const std::vector<JobState>& states) {
  RETURN_IF_ERROR(ValidateStates(states));
  const std::vector<std::string> names = StateNames(states);
  std::string sql = "SELECT count(*) FROM jobs";
  if (!names.empty()) absl::StrAppend(&sql, " WHERE ", StatesInClause(1, names.size()));
  int64_t count = 0;
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare(sql));
    if (!names.empty()) BindStates(s, 1, names);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) count = s.ColumnInt(0);
    return absl::OkStatus();
  }));
  return count;
}

absl::StatusOr<std::optional<JobRecord>> SqliteStore::ClaimJob(const std::string& worker_id,
                                                               absl::Duration lease,
                                                               absl::Time now) {
  RETURN_IF_ERROR(ValidateClaim(worker_id, lease));
  // One statement: SQLite has a single writer, so the row picked cannot be claimed by anyone
  // else before the UPDATE commits (PostgreSQL needs FOR UPDATE SKIP LOCKED instead). Oldest
  // first by (created_at, id); each candidate subquery walks jobs_by_state in that order and
  // stops at its first runnable row.
  static const std::string kClaim = absl::StrCat(
      "UPDATE jobs SET state = 'running', lease_owner = ?1, lease_expires_at = ?2, "
      "attempt = attempt + 1, started_at = coalesce(started_at, ?3) "
      "WHERE id = (SELECT id FROM ("
      "  SELECT * FROM (SELECT id, created_at FROM jobs WHERE state = 'queued' AND "
      "    cancel_requested = 0 AND run_after <= ?3 ORDER BY created_at, id LIMIT 1)"
      "  UNION ALL"
      "  SELECT * FROM (SELECT id, created_at FROM jobs WHERE state = 'running' AND "
      "    lease_expires_at <= ?3 ORDER BY created_at, id LIMIT 1))"
      " ORDER BY created_at, id LIMIT 1)"
      " RETURNING ",
      kJobColumns);
  std::optional<JobRecord> out;
  RETURN_IF_ERROR(Write([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare(kClaim));
    s.BindText(1, worker_id).BindTime(2, now + lease).BindTime(3, now);
    ASSIGN_OR_RETURN(out, StepJob(s));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<HeartbeatResult> SqliteStore::HeartbeatJob(const JobLease& lease,
                                                          absl::Time new_expiry) {
  RETURN_IF_ERROR(ValidateLease(lease));
  HeartbeatResult out;
  RETURN_IF_ERROR(Write([&](Connection& c) -> absl::Status {
    {
      ASSIGN_OR_RETURN(
          Stmt s, c.Prepare(absl::StrCat("UPDATE jobs SET lease_expires_at = ?4 WHERE ", kFence,
                                         " RETURNING cancel_requested, lease_expires_at")));
      BindFence(s, lease);
      s.BindTime(4, new_expiry);
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) {
        out.cancel_requested = s.ColumnInt(0) != 0;
        out.lease_expires_at = s.ColumnTime(1);
        return absl::OkStatus();
      }
    }
    return FenceFailure(c, lease);
  }));
  return out;
}

absl::Status SqliteStore::CheckpointJob(const JobLease& lease, const std::string& checkpoint,
                                        const std::string& progress) {
  RETURN_IF_ERROR(ValidateLease(lease));
  return Write([&](Connection& c) -> absl::Status {
    {
      ASSIGN_OR_RETURN(Stmt s,
                       c.Prepare(absl::StrCat("UPDATE jobs SET checkpoint = ?4, progress = ?5 "
                                              "WHERE ",
                                              kFence)));
      BindFence(s, lease);
      s.BindBlob(4, checkpoint).BindBlob(5, progress);
      RETURN_IF_ERROR(s.Run());
    }
    if (c.Changes() == 1) return absl::OkStatus();
    return FenceFailure(c, lease);
  });
}

absl::StatusOr<JobRecord> SqliteStore::FinishJob(const JobLease& lease, const JobOutcome& outcome,
                                                 absl::Time now) {
  RETURN_IF_ERROR(ValidateOutcome(lease, outcome));
  std::optional<JobRecord> out;
  RETURN_IF_ERROR(Write([&](Connection& c) -> absl::Status {
    {
      ASSIGN_OR_RETURN(
          Stmt s, c.Prepare(absl::StrCat(
                      "UPDATE jobs SET state = ?4, result = ?5, end_reason = ?6, error = ?7, "
                      "progress = coalesce(?8, progress), ended_at = ?9, lease_expires_at = NULL, "
                      "last_event_seq = last_event_seq + ?10 WHERE ",
                      kFence, " RETURNING ", kJobColumns)));
      BindFence(s, lease);
      s.BindText(4, JobStateName(outcome.state))
          .BindBlob(5, outcome.result)
          .BindText(6, outcome.end_reason)
          .BindText(7, outcome.error)
          .BindTime(9, now)
          .BindInt(10, outcome.event.has_value() ? 1 : 0);
      if (outcome.progress.has_value()) s.BindBlob(8, *outcome.progress);
      ASSIGN_OR_RETURN(out, StepJob(s));
    }
    if (!out.has_value()) return FenceFailure(c, lease);
    if (outcome.event.has_value()) {
      RETURN_IF_ERROR(InsertEvent(c, lease.job_id, /*bump=*/false, outcome.event->kind,
                                  outcome.event->payload, now)
                          .status());
    }
    return absl::OkStatus();
  }));
  return *std::move(out);
}

absl::StatusOr<JobRecord> SqliteStore::ReleaseJob(const JobLease& lease, absl::Time run_after,
                                                  const std::string& error, absl::Time now) {
  RETURN_IF_ERROR(ValidateLease(lease));
  std::optional<JobRecord> out;
  RETURN_IF_ERROR(Write([&](Connection& c) -> absl::Status {
    {
      ASSIGN_OR_RETURN(
          Stmt s,
          c.Prepare(absl::StrCat(
              "UPDATE jobs SET "
              "state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END, "
              "ended_at = CASE WHEN cancel_requested THEN ?6 ELSE NULL END, "
              "end_reason = CASE WHEN cancel_requested THEN ?7 ELSE end_reason END, "
              "run_after = ?4, error = ?5, lease_owner = '', lease_expires_at = NULL WHERE ",
              kFence, " RETURNING ", kJobColumns)));
      BindFence(s, lease);
      s.BindTime(4, run_after).BindText(5, error).BindTime(6, now).BindText(7, kEndReasonCancelled);
      ASSIGN_OR_RETURN(out, StepJob(s));
    }
    if (!out.has_value()) return FenceFailure(c, lease);
    return absl::OkStatus();
  }));
  return *std::move(out);
}

absl::StatusOr<JobRecord> SqliteStore::RequestCancel(const std::string& id, absl::Time now) {
  std::optional<JobRecord> out;
  RETURN_IF_ERROR(Write([&](Connection& c) -> absl::Status {
    std::string state;
    {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT state FROM jobs WHERE id = ?1"));
      s.BindText(1, id);
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return JobNotFound(id);
      state = s.ColumnText(0);
    }
    if (state == "queued") {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare(absl::StrCat(
                                   "UPDATE jobs SET state = 'cancelled', cancel_requested = 1, "
                                   "ended_at = ?2, end_reason = ?3 WHERE id = ?1 RETURNING ",
                                   kJobColumns)));
      s.BindText(1, id).BindTime(2, now).BindText(3, kEndReasonCancelled);
      ASSIGN_OR_RETURN(out, StepJob(s));
    } else if (state == "running") {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare(absl::StrCat("UPDATE jobs SET cancel_requested = 1 "
                                                      "WHERE id = ?1 RETURNING ",
                                                      kJobColumns)));
      s.BindText(1, id);
      ASSIGN_OR_RETURN(out, StepJob(s));
    } else {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", id, " already ended (", state, ")"));
    }
    if (!out.has_value()) return absl::InternalError("UPDATE ... RETURNING gave no row");
    return absl::OkStatus();
  }));
  return *std::move(out);
}

absl::StatusOr<int64_t> SqliteStore::PruneJobs(absl::Time ended_before, int limit) {
  if (limit <= 0) limit = 1000;
  int64_t deleted = 0;
  RETURN_IF_ERROR(Write([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s,
                     c.Prepare("DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE "
                               "ended_at < ?1 AND state IN ('succeeded', 'failed', 'cancelled') "
                               "LIMIT ?2)"));
    s.BindTime(1, ended_before).BindInt(2, limit);
    RETURN_IF_ERROR(s.Run());
    deleted = c.Changes();
    return absl::OkStatus();
  }));
  return deleted;
}

// ---------------------------------------------------------------------------------------
// Job events

absl::StatusOr<int64_t> SqliteStore::AppendJobEvent(const std::string& job_id,
                                                    const std::optional<JobLease>& fence,
                                                    const std::string& kind,
                                                    const std::string& payload, absl::Time now) {
  RETURN_IF_ERROR(ValidateEventAppend(job_id, fence, kind));
  int64_t seq = 0;
  RETURN_IF_ERROR(Write([&](Connection& c) -> absl::Status {
    if (fence.has_value()) {
      {
        ASSIGN_OR_RETURN(
            Stmt s, c.Prepare(absl::StrCat("UPDATE jobs SET last_event_seq = last_event_seq + 1 "
                                           "WHERE ",
                                           kFence, " RETURNING last_event_seq")));
        BindFence(s, *fence);
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) return FenceFailure(c, *fence);
      }
      ASSIGN_OR_RETURN(seq, InsertEvent(c, job_id, /*bump=*/false, kind, payload, now));
    } else {
      ASSIGN_OR_RETURN(seq, InsertEvent(c, job_id, /*bump=*/true, kind, payload, now));
    }
    return absl::OkStatus();
  }));
  return seq;
}

absl::StatusOr<std::vector<JobEventRecord>> SqliteStore::ListJobEvents(const std::string& job_id,
                                                                       int64_t after_seq,
                                                                       int limit) {
  if (limit <= 0) limit = 1000;
  std::vector<JobEventRecord> events;
  bool job_exists = true;
  RETURN_IF_ERROR(Read([&](Connection& c) -> absl::Status {
    {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT seq, kind, payload, time FROM job_events "
                                         "WHERE job_id = ?1 AND seq > ?2 ORDER BY seq "
                                         "LIMIT ?3"));
      s.BindText(1, job_id).BindInt(2, after_seq).BindInt(3, limit);
      while (true) {
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        JobEventRecord e;
        e.job_id = job_id;
        e.seq = s.ColumnInt(0);
        e.kind = s.ColumnText(1);
        e.payload = s.ColumnBlob(2);
        e.time = s.ColumnTime(3);
        events.push_back(std::move(e));
      }
    }
    if (events.empty()) {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT 1 FROM jobs WHERE id = ?1"));
      s.BindText(1, job_id);
      ASSIGN_OR_RETURN(job_exists, s.Step());
    }
    return absl::OkStatus();
  }));
  if (!job_exists) return JobNotFound(job_id);
  return events;
}

}  // namespace elexirion::store
