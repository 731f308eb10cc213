#include "server/api/services.h"

namespace elexirion::api {
namespace {
constexpr char kUntil[] = "the training data manager";
}  // namespace

ServerUnaryReactor* DatasetServiceImpl::CreateDataset(CallbackServerContext* ctx,
                                                      const v1::CreateDatasetRequest*,
                                                      v1::Dataset*) {
  return Unimplemented(ctx, api_, "CreateDataset", kUntil);
}
ServerUnaryReactor* DatasetServiceImpl::ListDatasets(CallbackServerContext* ctx,
                                                     const v1::ListDatasetsRequest*,
                                                     v1::ListDatasetsResponse*) {
  return Unimplemented(ctx, api_, "ListDatasets", kUntil);
}
ServerUnaryReactor* DatasetServiceImpl::DeleteDataset(CallbackServerContext* ctx,
                                                      const v1::DeleteDatasetRequest*,
                                                      v1::DeleteDatasetResponse*) {
  return Unimplemented(ctx, api_, "DeleteDataset", kUntil);
}
ServerUnaryReactor* DatasetServiceImpl::AddExamples(CallbackServerContext* ctx,
                                                    const v1::AddExamplesRequest*,
                                                    v1::AddExamplesResponse*) {
  return Unimplemented(ctx, api_, "AddExamples", kUntil);
}
ServerUnaryReactor* DatasetServiceImpl::ListExamples(CallbackServerContext* ctx,
                                                     const v1::ListExamplesRequest*,
                                                     v1::ListExamplesResponse*) {
  return Unimplemented(ctx, api_, "ListExamples", kUntil);
}
ServerUnaryReactor* DatasetServiceImpl::DeleteExample(CallbackServerContext* ctx,
                                                      const v1::DeleteExampleRequest*,
                                                      v1::DeleteExampleResponse*) {
  return Unimplemented(ctx, api_, "DeleteExample", kUntil);
}
ServerUnaryReactor* DatasetServiceImpl::ImportExamples(CallbackServerContext* ctx,
                                                       const v1::ImportExamplesRequest*,
                                                       v1::AddExamplesResponse*) {
  return Unimplemented(ctx, api_, "ImportExamples", kUntil);
}
ServerUnaryReactor* DatasetServiceImpl::ExportExamples(CallbackServerContext* ctx,
                                                       const v1::ExportExamplesRequest*,
                                                       v1::ExportExamplesResponse*) {
  return Unimplemented(ctx, api_, "ExportExamples", kUntil);
}

}  // namespace elexirion::api
