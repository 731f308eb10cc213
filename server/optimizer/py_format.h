// Python-compatible text renderings that DSPy's prompts and artifacts contain:
//  - PyJsonDumps: json.dumps(value, ensure_ascii=False) with the default ", " / ": "
//    separators, or with indent=N (then "," at line ends and ": "); keys keep their order.
//  - PyStr: str(value) of the Python value a JSON value decodes to ("True", "None", "3.5",
//    strings unquoted, lists/dicts as their repr).
//  - PyRepr: repr(value) ('text' with Python's quote choice and escapes, {'k': v}, [a, b]).
//  - PyFloatRepr: repr(float) (shortest round trip, "1e+16", "1.0", "inf").
//  - LenientJsonLoads: a small json_repair / ast.literal_eval stand-in used when parsing model
//    output for non-string fields: strict JSON first, then fenced code blocks, Python literals
//    (True/False/None, single-quoted strings, tuples), trailing commas and a missing closing
//    bracket or brace. nullopt when nothing parses.
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "nlohmann/json.hpp"

namespace elexirion::optimizer {

using ojson = nlohmann::ordered_json;

std::string PyJsonDumps(const ojson& value, int indent = -1);
std::string PyStr(const ojson& value);
std::string PyRepr(const ojson& value);
std::string PyFloatRepr(double value);
std::string PyStringRepr(std::string_view text);

std::optional<ojson> LenientJsonLoads(std::string_view text);

// The first balanced {...} object in `text` (string literals respected), or nullopt.
std::optional<std::string> FirstJsonObject(std::string_view text);

}  // namespace elexirion::optimizer
