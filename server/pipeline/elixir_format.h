// Byte-exact reproductions of the Elixir formatting that pipeline_ex's prompt builder and
// template engine apply, so that prompts rendered here equal pipeline_ex's:
//  - JasonEncode: `Jason.encode!(value)` / `Jason.encode!(value, pretty: true)` (two-space
//    indent, `"key": value`, empty {} and [], keys in Erlang term order, which for the string
//    keys of small maps is byte order; Jason's default escaping: \" \\ \b \t \n \f \r and
//    \u00XX (upper-case hex) for other control bytes, nothing else escaped);
//  - ElixirFloatToString: Erlang's shortest round-trip float formatting (io_lib_format
//    fwrite_g, which Float.to_string/1 and Jason use): "0.1", "0.001", "1.0e-4", "100.0",
//    "1.0e6";
//  - ElixirToString: `to_string/1` of a decoded JSON value (nil -> "", lists as charlists /
//    iodata); maps raise Protocol.UndefinedError in Elixir, so they are an error here.
// Deviation: Erlang iterates maps with more than 32 keys in hash order; we always sort.
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace elexirion::pipeline {

std::string ElixirFloatToString(double value);
std::string JasonEncode(const nlohmann::json& value, bool pretty);
absl::StatusOr<std::string> ElixirToString(const nlohmann::json& value);

// Parses JSON without risking the parser's recursion: nullopt when `text` is not JSON or
// nests deeper than `max_depth`.
std::optional<nlohmann::json> ParseJsonSafely(std::string_view text, int max_depth = 128);

// Elixir truthiness used by conditions: nil, false, "", [] and %{} are false.
bool ElixirTruthy(const nlohmann::json& value);

}  // namespace elexirion::pipeline
