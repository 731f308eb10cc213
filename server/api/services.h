// The v1 gRPC services. Each is a thin, stateless layer over the core reached through
// ApiContext; one file per service implements it.
#pragma once

#include "elexirion/v1/dataset.grpc.pb.h"
#include "elexirion/v1/jobs.grpc.pb.h"
#include "elexirion/v1/pipeline.grpc.pb.h"
#include "elexirion/v1/program.grpc.pb.h"
#include "elexirion/v1/telemetry.grpc.pb.h"
#include "server/api/api_context.h"
#include "server/api/arena_allocator.h"

namespace elexirion::api {

namespace v1 = ::elexirion::v1;
using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

class OptimizerServiceImpl final : public v1::OptimizerService::CallbackService {
 public:
  explicit OptimizerServiceImpl(ApiContext api) : api_(api) {}
  ServerUnaryReactor* OptimizeModule(CallbackServerContext* ctx,
                                     const v1::OptimizeModuleRequest* request,
                                     v1::Job* response) override;
  ServerUnaryReactor* GetJob(CallbackServerContext* ctx, const v1::GetJobRequest* request,
                             v1::Job* response) override;
  ServerUnaryReactor* ListJobs(CallbackServerContext* ctx, const v1::ListJobsRequest* request,
                               v1::ListJobsResponse* response) override;
  ServerUnaryReactor* CancelJob(CallbackServerContext* ctx, const v1::CancelJobRequest* request,
                                v1::Job* response) override;
  grpc::ServerWriteReactor<v1::ProgressEvent>* StreamProgress(
      CallbackServerContext* ctx, const v1::StreamProgressRequest* request) override;
  grpc::ServerWriteReactor<v1::ProgressEventBatch>* StreamProgressBatches(
      CallbackServerContext* ctx, const v1::StreamProgressRequest* request) override;

 private:
  // Admission, auth and argument checks shared by both progress streams.
  template <typename Response>
  grpc::ServerWriteReactor<Response>* StartProgressStream(CallbackServerContext* ctx,
                                                          const v1::StreamProgressRequest* request);

  ApiContext api_;
};

class PipelineServiceImpl final : public v1::PipelineService::CallbackService {
 public:
  explicit PipelineServiceImpl(ApiContext api) : api_(api) {}
  ServerUnaryReactor* RegisterPipeline(CallbackServerContext* ctx,
                                       const v1::RegisterPipelineRequest* request,
                                       v1::Pipeline* response) override;
  ServerUnaryReactor* GetPipeline(CallbackServerContext* ctx, const v1::GetPipelineRequest* request,
                                  v1::Pipeline* response) override;
  ServerUnaryReactor* ListPipelines(CallbackServerContext* ctx,
                                    const v1::ListPipelinesRequest* request,
                                    v1::ListPipelinesResponse* response) override;
  ServerUnaryReactor* DeletePipeline(CallbackServerContext* ctx,
                                     const v1::DeletePipelineRequest* request,
                                     v1::DeletePipelineResponse* response) override;
  ServerUnaryReactor* ExecutePipeline(CallbackServerContext* ctx,
                                      const v1::ExecutePipelineRequest* request,
                                      v1::ExecutePipelineResponse* response) override;

 private:
  ApiContext api_;
};

class ProgramServiceImpl final : public v1::ProgramService::CallbackService {
 public:
  explicit ProgramServiceImpl(ApiContext api) : api_(api) {}
  ServerUnaryReactor* GetProgram(CallbackServerContext* ctx, const v1::GetProgramRequest* request,
                                 v1::Program* response) override;
  ServerUnaryReactor* ListPrograms(CallbackServerContext* ctx,
                                   const v1::ListProgramsRequest* request,
                                   v1::ListProgramsResponse* response) override;
  ServerUnaryReactor* PromoteProgram(CallbackServerContext* ctx,
                                     const v1::PromoteProgramRequest* request,
                                     v1::Program* response) override;

 private:
  ApiContext api_;
};

class DatasetServiceImpl final : public v1::DatasetService::CallbackService {
 public:
  explicit DatasetServiceImpl(ApiContext api) : api_(api) {}
  ServerUnaryReactor* CreateDataset(CallbackServerContext* ctx,
                                    const v1::CreateDatasetRequest* request,
                                    v1::Dataset* response) override;
  ServerUnaryReactor* ListDatasets(CallbackServerContext* ctx,
                                   const v1::ListDatasetsRequest* request,
                                   v1::ListDatasetsResponse* response) override;
  ServerUnaryReactor* DeleteDataset(CallbackServerContext* ctx,
                                    const v1::DeleteDatasetRequest* request,
                                    v1::DeleteDatasetResponse* response) override;
  ServerUnaryReactor* AddExamples(CallbackServerContext* ctx, const v1::AddExamplesRequest* request,
                                  v1::AddExamplesResponse* response) override;
  ServerUnaryReactor* ListExamples(CallbackServerContext* ctx,
                                   const v1::ListExamplesRequest* request,
                                   v1::ListExamplesResponse* response) override;
  ServerUnaryReactor* DeleteExample(CallbackServerContext* ctx,
                                    const v1::DeleteExampleRequest* request,
                                    v1::DeleteExampleResponse* response) override;
  ServerUnaryReactor* ImportExamples(CallbackServerContext* ctx,
                                     const v1::ImportExamplesRequest* request,
                                     v1::AddExamplesResponse* response) override;
  ServerUnaryReactor* ExportExamples(CallbackServerContext* ctx,
                                     const v1::ExportExamplesRequest* request,
                                     v1::ExportExamplesResponse* response) override;

 private:
  ApiContext api_;
};

// RecordExecutions and StreamExecutions are raw methods: their records are parsed as
// record_wire.proto's view (Structs left as bytes, turned into JSON text in one pass by
// struct_wire.h) instead of into protobuf maps; clients see the same elexirion.v1 contract.
class TelemetryServiceImpl final
    : public v1::TelemetryService::WithRawCallbackMethod_RecordExecutions<
          v1::TelemetryService::WithRawCallbackMethod_StreamExecutions<
              v1::TelemetryService::CallbackService>> {
 public:
  explicit TelemetryServiceImpl(ApiContext api) : api_(api) {
    SetMessageAllocatorFor_RecordExecution(&record_allocator_);
  }
  ServerUnaryReactor* RecordExecution(CallbackServerContext* ctx,
                                      const v1::RecordExecutionRequest* request,
                                      v1::RecordExecutionResponse* response) override;
  ServerUnaryReactor* RecordExecutions(CallbackServerContext* ctx, const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;
  grpc::ServerReadReactor<grpc::ByteBuffer>* StreamExecutions(CallbackServerContext* ctx,
                                                              grpc::ByteBuffer* response) override;
  ServerUnaryReactor* GetUsageStats(CallbackServerContext* ctx,
                                    const v1::GetUsageStatsRequest* request,
                                    v1::UsageStats* response) override;

 private:
  ApiContext api_;
  ArenaMessageAllocator<v1::RecordExecutionRequest, v1::RecordExecutionResponse> record_allocator_;
};

}  // namespace elexirion::api
