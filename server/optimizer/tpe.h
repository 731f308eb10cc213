// A Tree-structured Parzen Estimator over categorical parameters, as MIPROv2 uses Optuna's
// TPESampler(seed, multivariate=True) with Optuna's defaults: the first n_startup_trials (10)
// completed trials make the sampler draw uniformly at random; afterwards the completed trials
// are split into the best gamma(n) = min(ceil(0.1 n), 25) ("below") and the rest ("above"),
// each group becomes a mixture of one categorical kernel per trial (prior_weight / n_kernels on
// every choice plus 1 on the observed one, normalized) and a uniform prior kernel, with
// Optuna's default component weights (all 1 below 25 trials, else a ramp for older trials);
// n_ei_candidates (24) joint samples are drawn from the "below" mixture and the one maximizing
// log l(x) - log g(x) is suggested. Direction: maximize.
// Random draws use PyRandom(seed), so the suggestions are a deterministic function of the seed
// and the trial history (equivalent in distribution to Optuna's, not bit-identical).
//
// Thread safety: not thread safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "server/optimizer/py_random.h"

namespace elexirion::optimizer {

class TpeSampler {
 public:
  struct Param {
    std::string name;
    int choices = 1;
  };
  struct Options {
    int n_startup_trials = 10;
    int n_ei_candidates = 24;
    double prior_weight = 1.0;
  };

  TpeSampler(int64_t seed, std::vector<Param> params, Options options);
  TpeSampler(int64_t seed, std::vector<Param> params)
      : TpeSampler(seed, std::move(params), Options{}) {}

  // A completed trial (objective value to maximize). Trials are kept in the order added.
  void AddTrial(const std::map<std::string, int>& params, double value);
  std::map<std::string, int> Suggest();
  size_t num_trials() const { return trials_.size(); }

 private:
  struct Trial {
    std::vector<int> values;  // per param
    double value = 0;
  };
  // log of the mixture density at x for the given group of trial indices.
  double LogDensity(const std::vector<int>& x, const std::vector<size_t>& group) const;
  std::vector<double> ComponentWeights(size_t n) const;
  std::vector<double> KernelRow(int observed, int choices, size_t n_kernels) const;

  std::vector<Param> params_;
  Options options_;
  PyRandom rng_;
  std::vector<Trial> trials_;
};

}  // namespace elexirion::optimizer
