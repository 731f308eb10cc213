// Hostile-input-safe YAML parsing: text -> an immutable tree with source locations.
//
// yaml-cpp's own node graph is never walked. We drive yaml-cpp's event parser and build our
// own tree under explicit budgets, because:
//  - an alias is shared, so "billion laughs" costs nothing to parse but explodes in any
//    consumer: every alias is charged the full size of the subtree it names (node count,
//    scalar bytes and depth), so amplification hits the node budget at parse time;
//  - `a: &x [1, *x]` makes a cycle: an alias naming an anchor that is still open (an
//    enclosing node) is rejected;
//  - yaml-cpp's parser recurses once per nesting level (it throws DeepRecursion at ~500 levels,
//    but a small thread stack overflows before that): parsing runs on a dedicated thread with a
//    large stack, and our own depth budget (default 64) rejects deep documents long before.
// Input and every scalar (escapes included) must be well-formed UTF-8, as YAML requires.
// Every failure is INVALID_ARGUMENT with "line L, column C" (1-based) when a position exists.
//
// Thread safety: ParseYaml is reentrant; trees are immutable and may be shared across threads.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace elexirion::pipeline {

// 1-based; 0 means unknown.
struct SourceLocation {
  int line = 0;
  int column = 0;
};

// "line L, column C" (or "" when unknown).
std::string FormatLocation(const SourceLocation& location);

struct YamlLimits {
  // Input size in bytes.
  size_t max_bytes = 1 << 20;
  // Nodes visited, counting every alias expansion in full.
  size_t max_nodes = 100'000;
  // Nesting depth (the root is depth 1), counting alias expansions.
  int max_depth = 64;
  // Scalar bytes after alias expansion (keys included).
  size_t max_expanded_bytes = 16 << 20;
};

struct YamlNode;
using YamlNodePtr = std::shared_ptr<const YamlNode>;

struct YamlNode {
  enum class Kind { kNull, kScalar, kSequence, kMap };
  struct Entry {
    std::string key;
    SourceLocation key_location;
    YamlNodePtr value;
  };

  Kind kind = Kind::kNull;
  // kScalar: the text as written (after YAML unescaping/folding).
  std::string scalar;
  // kScalar: true for an untagged plain scalar, whose type (int, float, bool) is resolved by
  // the YAML 1.2 core schema; quoted and block scalars are always strings.
  bool plain = false;
  // Explicit tag ("tag:yaml.org,2002:str", "!custom"), empty when none.
  std::string tag;
  std::vector<YamlNodePtr> items;  // kSequence
  std::vector<Entry> entries;      // kMap, in document order, keys unique
  SourceLocation location;
  // This subtree's totals (this node included); an alias is charged these.
  size_t subtree_nodes = 1;
  size_t subtree_bytes = 0;
  int subtree_depth = 1;

  bool IsMap() const { return kind == Kind::kMap; }
  bool IsSequence() const { return kind == Kind::kSequence; }
  bool IsScalar() const { return kind == Kind::kScalar; }
  bool IsNull() const { return kind == Kind::kNull; }
  // kMap: the value for `key`, or nullptr.
  const YamlNode* Find(std::string_view key) const;
  const Entry* FindEntry(std::string_view key) const;
};

// Parses the first document of `text`. An empty document gives a kNull root.
absl::StatusOr<YamlNodePtr> ParseYaml(std::string_view text, const YamlLimits& limits = {});

// Converts a (budget-checked) tree to JSON: maps keep document order, plain scalars are typed
// by the YAML 1.2 core schema (null, true/false, ints, floats; .inf/.nan stay strings because
// JSON cannot hold them), every other scalar is a string.
nlohmann::ordered_json YamlToJson(const YamlNode& node);
// The same with std::map objects (byte-ordered keys), for lookups and Jason-style output.
nlohmann::json YamlToSortedJson(const YamlNode& node);
// The typed value of one scalar or null node.
nlohmann::ordered_json YamlScalarToJson(const YamlNode& node);

}  // namespace elexirion::pipeline
