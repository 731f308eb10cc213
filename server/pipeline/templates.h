// {{...}} interpolation with pipeline_ex's rules (lib/pipeline/state/variable_engine.ex).
//
// Templates match `\{\{([^}]+)\}\}`; the expression is trimmed and resolved in this order:
//  1. function call `name(args)`: add, subtract, multiply, divide, max, min, round, floor,
//     ceil; arguments are inputs.x / steps.x.y / global_vars.x / state.x / numbers / variable
//     names / literals; an unknown function renders as "name(arg, ...)";
//  2. `inputs.a.b`: from the execution inputs; missing -> the template is kept literally;
//  3. `global_vars.k`: from workflow.global_vars (k taken whole); missing -> kept literally;
//  4. `steps.<step>.<path>`: from earlier results (string keys, with the `result` wrapper
//     fallbacks); missing -> kept literally;
//  5. an expression containing + - * / : single-operator integer arithmetic over variables
//     (missing -> 0); if it does not evaluate, the substituted text is rendered;
//  6. `state.a.b`: variable state (loop > session > global), missing -> "";
//  7. a bare name: variable lookup, missing -> "".
// Our extension: inside a for_loop / while_loop, `loop.<key>` (before step 5) reads the loop
// context ({<iterator>: item, index, total, first, last, level, parent} or {iteration,
// count}), missing -> "". pipeline_ex interpolates sub-steps once, before the loop, so there
// `{{loop.x}}` always renders ""; here sub-steps are interpolated per iteration.
// Values are rendered with Elixir's to_string (a map is an error: pipeline_ex crashes).
// When the execution has inputs (pipeline_ex's `inputs:` option), a string that is exactly one
// template (after trimming) yields the value itself, typed, as pipeline_ex's type-preserving
// mode does; otherwise each template is replaced by its text.
//
// Thread safety: pure functions over caller-owned data.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace elexirion::pipeline {

// set_variable's scopes; lookups search loop, then session, then global.
struct VariableState {
  nlohmann::json global = nlohmann::json::object();
  nlohmann::json session = nlohmann::json::object();
  nlohmann::json loop = nlohmann::json::object();
};

struct TemplateContext {
  const nlohmann::json* inputs = nullptr;       // nullptr: the execution has no inputs
  const nlohmann::json* global_vars = nullptr;  // nullptr: the workflow has none
  const nlohmann::json* results = nullptr;      // step name -> result map
  const VariableState* state = nullptr;
  const nlohmann::json* loop = nullptr;  // the innermost loop context, inside loops
};

// Interpolates one string (see above). The result is a string unless type preservation
// applies.
absl::StatusOr<nlohmann::json> InterpolateString(std::string_view text,
                                                 const TemplateContext& context);
// Interpolates every string inside `value` (maps and lists recursively).
absl::StatusOr<nlohmann::json> InterpolateValue(const nlohmann::json& value,
                                                const TemplateContext& context);
// Interpolates and renders as text (Elixir to_string).
absl::StatusOr<std::string> InterpolateToText(std::string_view text,
                                              const TemplateContext& context);

// set_variable's value resolution (VariableEngine.resolve_value): a string that is exactly
// one template (after trimming) evaluates to the typed value, other strings are interpolated
// against variable state only.
absl::StatusOr<nlohmann::json> ResolveVariableValue(const nlohmann::json& value,
                                                    const VariableState& state);

// True when `text` holds at least one {{template}} and nothing else but whitespace (an input
// slot such as "{{inputs.code}}" rather than instruction text).
bool IsTemplateOnly(std::string_view text);

// Variable lookup with scope precedence; null when missing.
nlohmann::json GetVariable(const VariableState& state, const std::string& name);

}  // namespace elexirion::pipeline
