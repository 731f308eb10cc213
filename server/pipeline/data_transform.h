// data_transform's operations with pipeline_ex's rules (lib/pipeline/data/transformer.ex):
//  - filter {field?, condition}: a list keeps the items whose condition holds; the condition is
//    split at the first of == != >= <= > < contains (in that order) into `left op literal`,
//    where left is `value` (the item's `field`), a dotted path into the item, or a name
//    (the item's key, else the field's value); with no operator the left side's truthiness.
//    Literals: 'x' "x" 12 1.5 true false null, anything else is text. A non-list stays or
//    becomes null.
//  - map {field?, mapping}: the field's value (as text) is looked up in mapping; without a
//    field the mapping is merged into each item. {field, expression: uppercase|lowercase}.
//  - aggregate {field?, function: sum|average|count|max|min|first|last|unique (default sum)}.
//  - join {left_field?, right_source, join_key}: each item is merged with the first right item
//    whose join_key equals the item's left_field (default join_key).
//  - group_by {field}: {"<value as text>": [items]}; a non-list becomes {"default": data}.
//  - sort {field, order: asc|desc}: stable, Erlang term order (numbers < atoms < maps < lists
//    < strings).
// Thread safety: pure functions.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace elexirion::pipeline {

// Resolves a join's right_source ("previous_response:<step>[:<path>]", "context:<field>" or
// "<step>"); null when missing.
using DataSourceResolver = std::function<nlohmann::json(const std::string& source)>;

// Applies `operations` (a list of operation maps) in order. INVALID_ARGUMENT naming the
// operation ("operations[1] (map): ...") when one cannot apply to its data.
absl::StatusOr<nlohmann::json> ApplyDataOperations(const nlohmann::json& data,
                                                   const nlohmann::json& operations,
                                                   const DataSourceResolver& resolve);

// Dotted-path lookup through maps; null when a step is missing or not a map.
nlohmann::json DataField(const nlohmann::json& data, const std::string& path);

// pipeline_ex's type name for data_transform metadata: list, map, string, number, boolean,
// null.
std::string DataTypeName(const nlohmann::json& data);

}  // namespace elexirion::pipeline
