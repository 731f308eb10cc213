// A Store that forwards every call to another one: tests derive from it and
// override the calls they want to slow down, block or fail.
#pragma once

#include "server/store/store.h"

namespace elexirion::testutil {

class ForwardingStore : public store::Store {
 public:
  explicit ForwardingStore(store::Store* inner) : inner_(inner) {}

  absl::Status Ping() override { return inner_->Ping(); }
  absl::Status IntegrityCheck() override { return inner_->IntegrityCheck(); }
  absl::StatusOr<store::JobRecord> CreateJob(const store::JobRecord& job, bool* already_existed,
                                             const store::NewJobEvent* first_event) override {
    return inner_->CreateJob(job, already_existed, first_event);
  }
  absl::StatusOr<store::JobRecord> GetJob(const std::string& id) override {
    return inner_->GetJob(id);
  }
  absl::StatusOr<store::JobPage> ListJobs(const store::JobFilter& filter, int page_size,
                                          const std::string& page_token) override {
    return inner_->ListJobs(filter, page_size, page_token);
  }
  absl::StatusOr<int64_t> CountJobs(const std::vector<store::JobState>& states) override {
    return inner_->CountJobs(states);
  }
  absl::StatusOr<std::optional<store::JobRecord>> ClaimJob(const std::string& worker_id,
                                                           absl::Duration lease,
                                                           absl::Time now) override {
    return inner_->ClaimJob(worker_id, lease, now);
  }
  absl::StatusOr<store::HeartbeatResult> HeartbeatJob(const store::JobLease& lease,
                                                      absl::Time new_expiry) override {
    return inner_->HeartbeatJob(lease, new_expiry);
  }
  absl::Status CheckpointJob(const store::JobLease& lease, const std::string& checkpoint,
                             const std::string& progress) override {
    return inner_->CheckpointJob(lease, checkpoint, progress);
  }
  absl::StatusOr<store::JobRecord> FinishJob(const store::JobLease& lease,
                                             const store::JobOutcome& outcome,
                                             absl::Time now) override {
    return inner_->FinishJob(lease, outcome, now);
  }
  absl::StatusOr<store::JobRecord> ReleaseJob(const store::JobLease& lease, absl::Time run_after,
                                              const std::string& error, absl::Time now) override {
    return inner_->ReleaseJob(lease, run_after, error, now);
  }
  absl::StatusOr<store::JobRecord> RequestCancel(const std::string& id, absl::Time now) override {
    return inner_->RequestCancel(id, now);
  }
  absl::StatusOr<int64_t> PruneJobs(absl::Time ended_before, int limit) override {
    return inner_->PruneJobs(ended_before, limit);
  }
  absl::StatusOr<int64_t> AppendJobEvent(const std::string& job_id,
                                         const std::optional<store::JobLease>& fence,
                                         const std::string& kind, const std::string& payload,
                                         absl::Time now) override {
    return inner_->AppendJobEvent(job_id, fence, kind, payload, now);
  }
  absl::StatusOr<std::vector<store::JobEventRecord>> ListJobEvents(const std::string& job_id,
                                                                   int64_t after_seq,
                                                                   int limit) override {
    return inner_->ListJobEvents(job_id, after_seq, limit);
  }
  absl::StatusOr<store::ProgramRecord> CreateProgramVersion(const store::ProgramRecord& program,
                                                            bool* already_existed) override {
    return inner_->CreateProgramVersion(program, already_existed);
  }
  absl::StatusOr<store::ProgramRecord> GetProgram(const std::string& name,
                                                  int64_t version) override {
    return inner_->GetProgram(name, version);
  }
  absl::StatusOr<store::ProgramRecord> GetLatestProgram(const std::string& name) override {
    return inner_->GetLatestProgram(name);
  }
  absl::StatusOr<store::ProgramRecord> GetProductionProgram(const std::string& name) override {
    return inner_->GetProductionProgram(name);
  }
  absl::StatusOr<store::ProgramPage> ListPrograms(const std::string& name, int page_size,
                                                  const std::string& page_token) override {
    return inner_->ListPrograms(name, page_size, page_token);
  }
  absl::StatusOr<store::ProgramRecord> GetLatestProgramForPipeline(
      const std::string& pipeline_name) override {
    return inner_->GetLatestProgramForPipeline(pipeline_name);
  }
  absl::StatusOr<store::ProgramRecord> PromoteProgram(const std::string& name,
                                                      int64_t version) override {
    return inner_->PromoteProgram(name, version);
  }
  absl::StatusOr<store::PipelineRecord> UpsertPipeline(
      const store::PipelineRecord& pipeline) override {
    return inner_->UpsertPipeline(pipeline);
  }
  absl::StatusOr<store::PipelineRecord> GetPipeline(const std::string& name) override {
    return inner_->GetPipeline(name);
  }
  absl::StatusOr<store::PipelinePage> ListPipelines(int page_size,
                                                    const std::string& page_token) override {
    return inner_->ListPipelines(page_size, page_token);
  }
  absl::Status DeletePipeline(const std::string& name) override {
    return inner_->DeletePipeline(name);
  }
  absl::StatusOr<store::DatasetRecord> CreateDataset(const store::DatasetRecord& dataset) override {
    return inner_->CreateDataset(dataset);
  }
  absl::StatusOr<store::DatasetRecord> GetDataset(const std::string& name) override {
    return inner_->GetDataset(name);
  }
  absl::StatusOr<store::DatasetPage> ListDatasets(int page_size,
                                                  const std::string& page_token) override {
    return inner_->ListDatasets(page_size, page_token);
  }
  absl::Status DeleteDataset(const std::string& name) override {
    return inner_->DeleteDataset(name);
  }
  absl::StatusOr<store::AddExamplesResult> AddExamples(
      const std::string& dataset, const std::vector<store::ExampleRecord>& examples) override {
    return inner_->AddExamples(dataset, examples);
  }
  absl::StatusOr<store::ExamplePage> ListExamples(const std::string& dataset, int page_size,
                                                  const std::string& page_token) override {
    return inner_->ListExamples(dataset, page_size, page_token);
  }
  absl::Status DeleteExample(const std::string& dataset, const std::string& id) override {
    return inner_->DeleteExample(dataset, id);
  }
  absl::StatusOr<int64_t> CountExamplesSince(const std::string& dataset,
                                             absl::Time since) override {
    return inner_->CountExamplesSince(dataset, since);
  }
  absl::StatusOr<std::vector<store::ExecutionInsertResult>> InsertExecutions(
      const std::vector<store::ExecutionRecordRow>& rows) override {
    return inner_->InsertExecutions(rows);
  }
  absl::StatusOr<std::vector<store::ExecutionRecordRow>> ListExecutions(
      const std::string& pipeline_name, absl::Time since, absl::Time until, int limit) override {
    return inner_->ListExecutions(pipeline_name, since, until, limit);
  }
  absl::StatusOr<int64_t> PruneExecutions(absl::Time before, int limit) override {
    return inner_->PruneExecutions(before, limit);
  }
  absl::StatusOr<store::ExecutionSummary> SummarizeExecutions(const std::string& pipeline_name,
                                                              absl::Time since,
                                                              absl::Time until) override {
    return inner_->SummarizeExecutions(pipeline_name, since, until);
  }
  absl::Status PutPipelineBaseline(const store::PipelineBaselineRecord& baseline) override {
    return inner_->PutPipelineBaseline(baseline);
  }
  absl::StatusOr<store::PipelineBaselineRecord> GetPipelineBaseline(
      const std::string& pipeline_name) override {
    return inner_->GetPipelineBaseline(pipeline_name);
  }
  absl::StatusOr<std::optional<std::string>> GetCachedLlmResponse(const std::string& key) override {
    return inner_->GetCachedLlmResponse(key);
  }
  absl::Status PutCachedLlmResponse(const std::string& key,
                                    const std::string& response_json) override {
    return inner_->PutCachedLlmResponse(key, response_json);
  }
  absl::StatusOr<int64_t> PruneLlmCache(absl::Time before, int limit) override {
    return inner_->PruneLlmCache(before, limit);
  }
  absl::StatusOr<bool> TryClaimScheduleSlot(const std::string& schedule_name,
                                            const std::string& slot_key, const std::string& owner,
                                            const std::string& outcome, absl::Time now) override {
    return inner_->TryClaimScheduleSlot(schedule_name, slot_key, owner, outcome, now);
  }
  absl::StatusOr<std::optional<store::ScheduleSlotRecord>> GetScheduleSlot(
      const std::string& schedule_name, const std::string& slot_key) override {
    return inner_->GetScheduleSlot(schedule_name, slot_key);
  }

 protected:
  store::Store* const inner_;
};

}  // namespace elexirion::testutil
