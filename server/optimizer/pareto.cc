#include "server/optimizer/pareto.h"

#include <algorithm>
#include <map>
#include <set>

namespace elexirion::optimizer {

std::vector<std::vector<size_t>> ParetoFronts(const std::vector<std::vector<double>>& scores) {
  size_t instances = 0;
  for (const auto& s : scores) instances = std::max(instances, s.size());
  std::vector<std::vector<size_t>> fronts(instances);
  for (size_t v = 0; v < instances; ++v) {
    double best = 0;
    bool any = false;
    for (size_t c = 0; c < scores.size(); ++c) {
      if (v >= scores[c].size()) continue;
      if (!any || scores[c][v] > best) {
        best = scores[c][v];
        any = true;
        fronts[v].clear();
      }
      if (scores[c][v] == best) fronts[v].push_back(c);
    }
  }
  return fronts;
}

std::vector<std::vector<size_t>> RemoveDominated(const std::vector<std::vector<size_t>>& fronts,
                                                 const std::vector<double>& aggregate) {
  std::vector<size_t> programs;
  {
    std::set<size_t> seen;
    for (const auto& f : fronts) {
      for (size_t c : f) {
        if (seen.insert(c).second) programs.push_back(c);
      }
    }
  }
  std::stable_sort(programs.begin(), programs.end(),
                   [&](size_t a, size_t b) { return aggregate[a] < aggregate[b]; });
  std::set<size_t> dominated;
  // y is dominated when each front holding y also holds another surviving candidate.
  auto is_dominated = [&](size_t y) {
    bool in_any = false;
    for (const auto& f : fronts) {
      if (std::find(f.begin(), f.end(), y) == f.end()) continue;
      in_any = true;
      bool other = false;
      for (size_t c : f) {
        if (c != y && dominated.count(c) == 0) other = true;
      }
      if (!other) return false;
    }
    return in_any;
  };
  bool removed = true;
  while (removed) {
    removed = false;
    for (size_t y : programs) {
      if (dominated.count(y) != 0) continue;
      if (is_dominated(y)) {
        dominated.insert(y);
        removed = true;
        break;
      }
    }
  }
  std::vector<std::vector<size_t>> out;
  for (const auto& f : fronts) {
    std::vector<size_t> kept;
    for (size_t c : f) {
      if (dominated.count(c) == 0) kept.push_back(c);
    }
    out.push_back(std::move(kept));
  }
  return out;
}

size_t ParetoFrontSize(const std::vector<std::vector<double>>& scores,
                       const std::vector<double>& aggregate) {
  std::set<size_t> distinct;
  for (const auto& f : RemoveDominated(ParetoFronts(scores), aggregate)) {
    distinct.insert(f.begin(), f.end());
  }
  return distinct.size();
}

size_t SelectParetoCandidate(const std::vector<std::vector<double>>& scores,
                             const std::vector<double>& aggregate, PyRandom& rng) {
  const auto fronts = RemoveDominated(ParetoFronts(scores), aggregate);
  // Frequencies in first-seen order, as gepa's dict.
  std::vector<size_t> order;
  std::map<size_t, size_t> frequency;
  for (const auto& f : fronts) {
    for (size_t c : f) {
      if (frequency[c]++ == 0) order.push_back(c);
    }
  }
  std::vector<size_t> sampling;
  for (size_t c : order) sampling.insert(sampling.end(), frequency[c], c);
  if (sampling.empty()) return 0;
  return sampling[rng.ChoiceIndex(sampling.size())];
}

}  // namespace elexirion::optimizer
