// Step conditions with pipeline_ex's rules (lib/pipeline/condition/engine.ex, functions.ex).
//
//  - null: true; a bool: itself (pipeline_ex would crash on a bare bool; we accept it).
//  - list: implicit AND; map: {and: [...]}, {or: [...]}, {not: cond}; another map is
//    rendered and evaluated as a string.
//  - string: field paths are `step.field.sub` looked up in the results map directly (no
//    `steps.` prefix); operators == != > < >= <= (space-delimited), contains, matches (regex),
//    `between X and Y`; arithmetic + - * / % with precedence; literals 'x' "x" 12 1.5 true
//    false null; `.length`; functions contains, matches, length, startsWith, endsWith,
//    toLowerCase, toUpperCase, trim, any, all, count, sum, average, min, max, isEmpty, days,
//    hours, minutes, seconds, abs, round, floor, ceil, sqrt, pow, between. A bare path is
//    tested for Elixir truthiness (nil, false, "", [], %{} are false).
// The dispatch order and its quirks are pipeline_ex's (e.g. a step name containing '-' makes
// the string an arithmetic expression). now() is not supported (it would compare a DateTime).
// An unknown function is an error, as pipeline_ex raises.
//
// Thread safety: pure function.
#pragma once

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace elexirion::pipeline {

absl::StatusOr<bool> EvaluateCondition(const nlohmann::json& condition,
                                       const nlohmann::json& results);

}  // namespace elexirion::pipeline
