// OptimizerContext: what an optimizer works with: the runner and metric, the datasets, the
// student LM settings with cancellation / budget / deadline, parallelism, the seed, events,
// the progress journal (checkpoints), trial numbering and the best-program-so-far record that
// a stopped run (cancel, budget, deadline) returns.
//
// Evaluations through the context are memoized by content (program state, devset, LM
// settings) for the whole run, and journaled: the same candidate is never evaluated twice,
// and a resumed run takes finished evaluations from its checkpoint.
//
// Thread safety: the coordinating thread owns the context; Evaluate() runs its examples on
// worker threads internally. Record/lookup helpers are thread safe.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "server/llm/llm_client.h"
#include "server/optimizer/evaluate.h"
#include "server/optimizer/events.h"
#include "server/optimizer/example.h"
#include "server/optimizer/journal.h"
#include "server/optimizer/metrics.h"
#include "server/optimizer/program.h"
#include "server/optimizer/program_runner.h"

namespace elexirion::optimizer {

struct TrialRecord {
  int trial = 0;
  ojson params = ojson::object();
  double score = 0;
  bool minibatch = false;
  // Examples the score is over.
  int size = 0;
};

class OptimizerContext {
 public:
  struct Options {
    const ProgramRunner* runner = nullptr;  // required
    const Metric* metric = nullptr;         // required
    std::vector<Example> trainset;
    std::vector<Example> valset;
    // Student LM settings plus cancellation, budget and deadline for every call.
    RunConfig student;
    // Proposer LM (COPRO, MIPROv2); unset fields: the student's, then the first predictor's
    // step provider.
    LmSettings prompt_lm;
    int num_threads = 8;
    int max_errors = 10;
    int64_t seed = 0;
    EventSink* events = nullptr;         // optional
    ProgressJournal* journal = nullptr;  // optional
  };

  explicit OptimizerContext(Options options);

  const ProgramRunner& runner() const { return *options_.runner; }
  const Metric& metric() const { return *options_.metric; }
  llm::LlmClient& client() const { return options_.runner->client(); }
  const std::vector<Example>& trainset() const { return options_.trainset; }
  const std::vector<Example>& valset() const { return options_.valset; }
  const RunConfig& student() const { return options_.student; }
  const LmSettings& prompt_lm() const { return options_.prompt_lm; }
  int num_threads() const { return options_.num_threads; }
  int max_errors() const { return options_.max_errors; }
  int64_t seed() const { return options_.seed; }
  EventSink& events() const { return *events_; }
  std::string primary_output() const { return primary_output_; }
  void set_primary_output(std::string field) { primary_output_ = std::move(field); }

  // OK, or the status the run must stop with (cancelled, budget, deadline).
  absl::Status CheckStop() const { return StopStatus(options_.student); }

  // Memoized, journaled evaluation with the student's RunConfig. `max_errors` < 0: the
  // context's.
  absl::StatusOr<EvaluationResult> Evaluate(const Program& program,
                                            const std::vector<Example>& devset,
                                            int max_errors = -1);
  // Several candidates on one devset with one shared pool (each memoized).
  std::vector<absl::StatusOr<EvaluationResult>> EvaluateMany(
      const std::vector<const Program*>& programs, const std::vector<Example>& devset,
      int max_errors = -1);
  // Evaluate with an explicit RunConfig, no memo (e.g. the final report with outputs).
  absl::StatusOr<EvaluationResult> EvaluateFresh(const Program& program,
                                                 const std::vector<Example>& devset);

  // Journal access for other units (no-ops without a journal).
  std::optional<ojson> Lookup(const std::string& key) const;
  void Record(const std::string& key, ojson value);

  // Trials: numbering, events and the trial log.
  int StartTrial(const ojson& params);
  void FinishTrial(int trial, const ojson& params, double score, bool minibatch, int size);
  const std::vector<TrialRecord>& trials() const { return trials_; }

  // Best program seen on the validation set so far (what a stopped run returns).
  void OfferBest(const Program& program, double score, int trial);
  const std::optional<Program>& best_program() const { return best_program_; }
  double best_score() const { return best_score_; }

  void EmitUsage() const;

  // A stable description of the LM settings (part of memo keys).
  static std::string LmKey(const LmSettings& lm);

 private:
  std::string EvalKey(const Program& program, const std::vector<Example>& devset) const;

  Options options_;
  EventSink* events_;
  std::string primary_output_;
  EventSink null_events_;
  llm::Usage start_usage_;
  std::vector<TrialRecord> trials_;
  int next_trial_ = 1;
  std::optional<Program> best_program_;
  double best_score_ = -1;
  mutable absl::Mutex memo_mu_;
  std::map<std::string, EvaluationResult> memo_ ABSL_GUARDED_BY(memo_mu_);
};

// The content fingerprint of a devset (ids of examples in order).
std::string DevsetKey(const std::vector<Example>& devset);

}  // namespace elexirion::optimizer
