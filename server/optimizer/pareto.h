// GEPA's Pareto-based candidate selection (gepa's select_program_candidate_from_pareto_front
// and remove_dominated_programs; DSPy 3.3.1 with gepa 0.1.x).
//
// scores[c][v] is candidate c's score on validation instance v. The front of instance v is
// the set of candidates with the best score on it. A candidate is dominated when every front
// it belongs to also holds another surviving candidate; dominated candidates are removed one
// at a time, lowest aggregate score first, until none is left. A parent is then drawn from
// the survivors with probability proportional to the number of instances it leads
// (rng.choice over a list holding each survivor once per front it is in, in instance order
// and, within an instance, in candidate order).
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <vector>

#include "server/optimizer/py_random.h"

namespace elexirion::optimizer {

// Per instance, the candidates with the best score on it (ascending candidate order).
std::vector<std::vector<size_t>> ParetoFronts(const std::vector<std::vector<double>>& scores);

// The fronts with dominated candidates removed.
std::vector<std::vector<size_t>> RemoveDominated(const std::vector<std::vector<size_t>>& fronts,
                                                 const std::vector<double>& aggregate);

// Distinct candidates on the (non-dominated) fronts.
size_t ParetoFrontSize(const std::vector<std::vector<double>>& scores,
                       const std::vector<double>& aggregate);

// Draws a parent (see the file comment). Requires at least one candidate.
size_t SelectParetoCandidate(const std::vector<std::vector<double>>& scores,
                             const std::vector<double>& aggregate, PyRandom& rng);

}  // namespace elexirion::optimizer
