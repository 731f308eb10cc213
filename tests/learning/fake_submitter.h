// The app's job submission as the learning scheduler sees it, reduced to a store write, for
// scheduler tests on any Store backend.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/learning/scheduler.h"
#include "server/store/store.h"

namespace elexirion::learning::testing {

// The app's submit path reduced to what matters here: the job is created in the store,
// idempotent on request_id, and every call is recorded. `fail_with` makes the next calls
// fail; `fail_after_create` fails after the job was created (a crash between submit and
// claim, as far as the slot can tell).
class FakeSubmitter {
 public:
  explicit FakeSubmitter(store::Store* store) : store_(store) {}

  SubmitFn Fn() {
    return [this](const v1::OptimizeModuleRequest& request) -> absl::StatusOr<std::string> {
      absl::MutexLock lock(&mu_);
      requests_.push_back(request);
      if (!fail_with_.ok() && !fail_after_create_) return fail_with_;
      store::JobRecord job;
      job.request_id = request.request_id();
      job.program_name = request.program_name();
      job.optimizer = request.optimizer().has_miprov2() ? "miprov2" : "bootstrap_few_shot";
      job.request = request.SerializeAsString();
      auto created = store_->CreateJob(job);
      if (!created.ok()) return created.status();
      if (!fail_with_.ok()) return fail_with_;
      return created->id;
    };
  }

  void FailWith(absl::Status status, bool after_create = false) {
    absl::MutexLock lock(&mu_);
    fail_with_ = std::move(status);
    fail_after_create_ = after_create;
  }
  std::vector<v1::OptimizeModuleRequest> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  store::Store* const store_;
  absl::Mutex mu_;
  std::vector<v1::OptimizeModuleRequest> requests_ ABSL_GUARDED_BY(mu_);
  absl::Status fail_with_ ABSL_GUARDED_BY(mu_);
  bool fail_after_create_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace elexirion::learning::testing
