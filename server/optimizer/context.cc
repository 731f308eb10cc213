#include "server/optimizer/context.h"

#include "absl/strings/str_cat.h"
#include "server/optimizer/hashing.h"
#include "server/optimizer/py_format.h"

namespace elexirion::optimizer {
namespace {

ojson ResultToJson(const EvaluationResult& r) {
  ojson scores = ojson::array();
  for (const ExampleResult& e : r.results)
    scores.push_back(e.error ? ojson(nullptr) : ojson(e.score));
  return ojson{{"score", r.score}, {"scores", scores}, {"errors", r.errors}};
}

std::optional<EvaluationResult> ResultFromJson(const ojson& j) {
  if (!j.is_object() || !j.contains("score") || !j.contains("scores")) return std::nullopt;
  EvaluationResult r;
  r.score = j.at("score").get<double>();
  r.errors = j.value("errors", 0);
  for (const ojson& s : j.at("scores")) {
    ExampleResult e;
    if (s.is_null()) {
      e.error = true;
    } else {
      e.score = s.get<double>();
      e.passed = e.score >= 1.0;
    }
    r.results.push_back(std::move(e));
  }
  return r;
}

}  // namespace

std::string DevsetKey(const std::vector<Example>& devset) {
  std::string all;
  for (const Example& e : devset) absl::StrAppend(&all, ExampleFingerprint(e), ",");
  return HashHex(all);
}

std::string OptimizerContext::LmKey(const LmSettings& lm) {
  return absl::StrCat(lm.provider, "|", lm.model, "|",
                      lm.temperature.has_value() ? PyFloatRepr(*lm.temperature) : "-", "|",
                      lm.max_tokens.has_value() ? absl::StrCat(*lm.max_tokens) : "-");
}

OptimizerContext::OptimizerContext(Options options) : options_(std::move(options)) {
  events_ = options_.events != nullptr ? options_.events : &null_events_;
  if (options_.student.account != nullptr) start_usage_ = options_.student.account->Snapshot();
  if (options_.num_threads < 1) options_.num_threads = 1;
  if (options_.max_errors < 1) options_.max_errors = 1;
}

std::string OptimizerContext::EvalKey(const Program& program,
                                      const std::vector<Example>& devset) const {
  return absl::StrCat(
      "eval/",
      HashHex(absl::StrCat(program.StateJson().dump(), "\x1f", DevsetKey(devset), "\x1f",
                           LmKey(options_.student.lm), "\x1f", options_.student.rollout_id)));
}

std::vector<absl::StatusOr<EvaluationResult>> OptimizerContext::EvaluateMany(
    const std::vector<const Program*>& programs, const std::vector<Example>& devset,
    int max_errors) {
  std::vector<absl::StatusOr<EvaluationResult>> out(programs.size(),
                                                    absl::UnknownError("not evaluated"));
  std::vector<const Program*> todo;
  std::vector<size_t> todo_index;
  std::vector<std::string> keys;
  std::map<std::string, size_t> first_of_key;  // duplicates inside one batch run once
  std::vector<std::pair<size_t, size_t>> copies;
  for (size_t i = 0; i < programs.size(); ++i) {
    const std::string key = EvalKey(*programs[i], devset);
    keys.push_back(key);
    {
      absl::MutexLock lock(&memo_mu_);
      auto it = memo_.find(key);
      if (it != memo_.end()) {
        out[i] = it->second;
        continue;
      }
    }
    if (std::optional<ojson> saved = Lookup(key)) {
      if (std::optional<EvaluationResult> r = ResultFromJson(*saved)) {
        absl::MutexLock lock(&memo_mu_);
        memo_[key] = *r;
        out[i] = *r;
        continue;
      }
    }
    auto dup = first_of_key.find(key);
    if (dup != first_of_key.end()) {
      copies.push_back({i, dup->second});
      continue;
    }
    first_of_key[key] = i;
    todo.push_back(programs[i]);
    todo_index.push_back(i);
  }
  if (!todo.empty()) {
    EvaluateOptions eo;
    eo.num_threads = options_.num_threads;
    eo.max_errors = max_errors < 0 ? options_.max_errors : max_errors;
    eo.primary_output = primary_output_;
    std::vector<absl::StatusOr<EvaluationResult>> results = optimizer::EvaluateMany(
        *options_.runner, *options_.metric, todo, devset, options_.student, eo);
    for (size_t k = 0; k < todo.size(); ++k) {
      const size_t i = todo_index[k];
      if (results[k].ok()) {
        {
          absl::MutexLock lock(&memo_mu_);
          memo_[keys[i]] = *results[k];
        }
        Record(keys[i], ResultToJson(*results[k]));
      }
      out[i] = std::move(results[k]);
    }
  }
  for (const auto& [i, src] : copies) out[i] = out[src];
  return out;
}

absl::StatusOr<EvaluationResult> OptimizerContext::Evaluate(const Program& program,
                                                            const std::vector<Example>& devset,
                                                            int max_errors) {
  return std::move(EvaluateMany({&program}, devset, max_errors)[0]);
}

absl::StatusOr<EvaluationResult> OptimizerContext::EvaluateFresh(
    const Program& program, const std::vector<Example>& devset) {
  EvaluateOptions eo;
  eo.num_threads = options_.num_threads;
  eo.max_errors = options_.max_errors;
  eo.primary_output = primary_output_;
  return optimizer::Evaluate(*options_.runner, *options_.metric, program, devset, options_.student,
                             eo);
}

std::optional<ojson> OptimizerContext::Lookup(const std::string& key) const {
  if (options_.journal == nullptr) return std::nullopt;
  return options_.journal->Lookup(key);
}

void OptimizerContext::Record(const std::string& key, ojson value) {
  if (options_.journal == nullptr) return;
  options_.journal->Record(key, std::move(value));
}

int OptimizerContext::StartTrial(const ojson& params) {
  const int trial = next_trial_++;
  events_->OnTrialStarted(trial, params);
  return trial;
}

void OptimizerContext::FinishTrial(int trial, const ojson& params, double score, bool minibatch,
                                   int size) {
  trials_.push_back(TrialRecord{trial, params, score, minibatch, size});
  events_->OnTrialFinished(trial, params, score, minibatch);
  EmitUsage();
}

void OptimizerContext::OfferBest(const Program& program, double score, int trial) {
  if (best_program_.has_value() && !(score > best_score_)) return;
  best_program_ = program;
  best_score_ = score;
  events_->OnNewBest(trial, score);
}

void OptimizerContext::EmitUsage() const {
  if (options_.student.account == nullptr) return;
  llm::Usage now = options_.student.account->Snapshot();
  now.llm_calls -= start_usage_.llm_calls;
  now.cache_hits -= start_usage_.cache_hits;
  now.input_tokens -= start_usage_.input_tokens;
  now.output_tokens -= start_usage_.output_tokens;
  now.cost_usd -= start_usage_.cost_usd;
  events_->OnUsage(now);
}

}  // namespace elexirion::optimizer
