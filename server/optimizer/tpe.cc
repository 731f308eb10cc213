#include "server/optimizer/tpe.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace elexirion::optimizer {
namespace {

double LogSumExp(const std::vector<double>& v) {
  double m = -std::numeric_limits<double>::infinity();
  for (double x : v) m = std::max(m, x);
  if (!std::isfinite(m)) return m;
  double sum = 0;
  for (double x : v) sum += std::exp(x - m);
  return m + std::log(sum);
}

}  // namespace

TpeSampler::TpeSampler(int64_t seed, std::vector<Param> params, Options options)
    : params_(std::move(params)), options_(options), rng_(seed) {}

void TpeSampler::AddTrial(const std::map<std::string, int>& params, double value) {
  Trial t;
  for (const Param& p : params_) {
    auto it = params.find(p.name);
    t.values.push_back(it == params.end() ? 0 : it->second);
  }
  t.value = value;
  trials_.push_back(std::move(t));
}

std::vector<double> TpeSampler::ComponentWeights(size_t n) const {
  // Optuna's default_weights: flat below 25 observations, else a ramp for the oldest.
  std::vector<double> w(n, 1.0);
  if (n >= 25) {
    const size_t ramp = n - 25;
    for (size_t i = 0; i < ramp; ++i) {
      w[i] = ramp == 1 ? 1.0 / static_cast<double>(n)
                       : 1.0 / static_cast<double>(n) + (1.0 - 1.0 / static_cast<double>(n)) *
                                                            static_cast<double>(i) /
                                                            static_cast<double>(ramp - 1);
    }
  }
  return w;
}

std::vector<double> TpeSampler::KernelRow(int observed, int choices, size_t n_kernels) const {
  std::vector<double> row(static_cast<size_t>(choices),
                          options_.prior_weight / static_cast<double>(n_kernels));
  if (observed >= 0 && observed < choices) row[static_cast<size_t>(observed)] += 1.0;
  const double sum = std::accumulate(row.begin(), row.end(), 0.0);
  for (double& x : row) x /= sum;
  return row;
}

double TpeSampler::LogDensity(const std::vector<int>& x, const std::vector<size_t>& group) const {
  const size_t n_kernels = group.size() + 1;
  std::vector<double> weights = ComponentWeights(group.size());
  weights.push_back(options_.prior_weight);
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  std::vector<double> terms;
  for (size_t k = 0; k < n_kernels; ++k) {
    double lp = std::log(weights[k] / total);
    for (size_t d = 0; d < params_.size(); ++d) {
      const int observed = k < group.size() ? trials_[group[k]].values[d] : -1;
      const std::vector<double> row = KernelRow(observed, params_[d].choices, n_kernels);
      lp += std::log(row[static_cast<size_t>(x[d])]);
    }
    terms.push_back(lp);
  }
  return LogSumExp(terms);
}

std::map<std::string, int> TpeSampler::Suggest() {
  std::map<std::string, int> out;
  if (static_cast<int>(trials_.size()) < options_.n_startup_trials) {
    for (const Param& p : params_)
      out[p.name] = static_cast<int>(rng_.RandBelow(static_cast<uint64_t>(p.choices)));
    return out;
  }
  // Split: the best gamma(n) trials (maximize; ties by trial order) are "below".
  const size_t n = trials_.size();
  const size_t n_below =
      std::min<size_t>(static_cast<size_t>(std::ceil(0.1 * static_cast<double>(n))), 25);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return trials_[a].value > trials_[b].value; });
  std::vector<size_t> below(order.begin(), order.begin() + static_cast<long>(n_below));
  std::vector<size_t> above(order.begin() + static_cast<long>(n_below), order.end());
  std::sort(below.begin(), below.end());
  std::sort(above.begin(), above.end());

  // Sample candidates from the "below" mixture.
  const size_t n_kernels = below.size() + 1;
  std::vector<double> weights = ComponentWeights(below.size());
  weights.push_back(options_.prior_weight);
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  std::vector<int> best;
  double best_score = -std::numeric_limits<double>::infinity();
  for (int c = 0; c < options_.n_ei_candidates; ++c) {
    // Pick a component.
    double u = rng_.Random() * total;
    size_t k = 0;
    while (k + 1 < n_kernels && u >= weights[k]) {
      u -= weights[k];
      ++k;
    }
    std::vector<int> x;
    for (size_t d = 0; d < params_.size(); ++d) {
      const int observed = k < below.size() ? trials_[below[k]].values[d] : -1;
      const std::vector<double> row = KernelRow(observed, params_[d].choices, n_kernels);
      double v = rng_.Random();
      int choice = 0;
      while (choice + 1 < params_[d].choices && v >= row[static_cast<size_t>(choice)]) {
        v -= row[static_cast<size_t>(choice)];
        ++choice;
      }
      x.push_back(choice);
    }
    const double score = LogDensity(x, below) - LogDensity(x, above);
    if (score > best_score) {
      best_score = score;
      best = x;
    }
  }
  for (size_t d = 0; d < params_.size(); ++d) out[params_[d].name] = best[d];
  return out;
}

}  // namespace elexirion::optimizer
