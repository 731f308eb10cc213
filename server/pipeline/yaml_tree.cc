#include "server/pipeline/yaml_tree.h"

#include <pthread.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/pipeline/strings.h"
#include "yaml-cpp/depthguard.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/exceptions.h"
#include "yaml-cpp/mark.h"
#include "yaml-cpp/parser.h"

namespace elexirion::pipeline {
namespace {

#define RETURN_IF_ERROR_(expr)         \
  do {                                 \
    absl::Status status_ = (expr);     \
    if (!status_.ok()) return status_; \
  } while (false)

// yaml-cpp recurses per nesting level until its DepthGuard<500> throws; 16 MiB covers that
// with a wide margin even under AddressSanitizer. The memory is reserved, not committed.
constexpr size_t kParserStackBytes = 16 << 20;

SourceLocation ToLocation(const YAML::Mark& mark) {
  if (mark.is_null()) return {};
  return {mark.line + 1, mark.column + 1};
}

// Offset of the first byte that is not well-formed UTF-8 (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF), or npos.
size_t FirstInvalidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t min = 0, cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2, min = 0x80, cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, min = 0x800, cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, min = 0x10000, cp = c & 0x07u;
    } else {
      return i;
    }
    if (i + len > s.size()) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return absl::string_view::npos;
}

SourceLocation LocationOfOffset(absl::string_view text, size_t offset) {
  SourceLocation location{1, 1};
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++location.line;
      location.column = 1;
    } else {
      ++location.column;
    }
  }
  return location;
}

std::string WithLocation(const SourceLocation& location, absl::string_view message) {
  std::string where = FormatLocation(location);
  if (where.empty()) return std::string(message);
  return absl::StrCat(where, ": ", message);
}

// A linear pre-scan that refuses, before yaml-cpp sees the text, documents whose flow
// nesting exceeds the depth limit or whose structure (mapping entries, sequence entries, flow
// items) already exceeds the node budget. yaml-cpp parses at a few MB/s and tokenizes nested
// flow collections far ahead of its events ("[[[[..." of 1 MiB takes it ~0.4 s before the
// first error), so these cases must not reach it. The scan skips quoted scalars, comments and
// block scalars; its node count (scalars, collections and anchors it can see start) is an
// estimate that only a document near the budget could reach. It also refuses a plain
// (unquoted) scalar longer than 64 KiB on one line, which yaml-cpp would need ~0.1 s to scan
// at 1 MiB; longer text belongs in a quoted or block scalar.
// Not thread safe: one per document.
class PreScanner {
 public:
  // yaml-cpp scans plain scalars at ~10 MB/s; one this long costs it ~6 ms.
  static constexpr size_t kMaxPlainScalarLine = 64 << 10;

  PreScanner(absl::string_view text, const YamlLimits& limits) : text_(text), limits_(limits) {}

  absl::Status Run() {
    size_t line_start = 0;
    while (line_start < text_.size()) {
      size_t line_end = text_.find('\n', line_start);
      if (line_end == absl::string_view::npos) line_end = text_.size();
      absl::Status s = Line(line_start, line_end);
      if (!s.ok()) return s;
      line_start = line_end + 1;
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Fail(size_t offset, absl::string_view message) const {
    return absl::InvalidArgumentError(WithLocation(LocationOfOffset(text_, offset), message));
  }

  absl::Status AddNodes(size_t n, size_t offset) {
    nodes_ += n;
    if (nodes_ > limits_.max_nodes) {
      return Fail(offset, absl::StrCat("document exceeds the node budget (", limits_.max_nodes,
                                       " nodes, counting alias expansions)"));
    }
    return absl::OkStatus();
  }

  static bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

  // Ends the plain-scalar run that started at `run` (if any) at offset `at`.
  absl::Status EndPlainRun(size_t* run, size_t at) const {
    if (*run != absl::string_view::npos && at - *run > kMaxPlainScalarLine) {
      return Fail(*run, absl::StrCat("plain scalar longer than ", kMaxPlainScalarLine,
                                     " bytes on one line; quote it or use a block scalar (|)"));
    }
    *run = absl::string_view::npos;
    return absl::OkStatus();
  }

  absl::Status Line(size_t begin, size_t end) {
    size_t indent = 0;
    while (begin + indent < end && text_[begin + indent] == ' ') ++indent;
    if (block_scalar_parent_ >= 0) {
      bool blank = true;
      for (size_t i = begin; i < end; ++i) blank = blank && IsBlank(text_[i]);
      if (blank || static_cast<int>(indent) > block_scalar_parent_) return absl::OkStatus();
      block_scalar_parent_ = -1;
    }
    bool value_position = quote_ == 0 && flow_depth_ == 0;
    size_t run = absl::string_view::npos;  // start of the plain scalar being read
    for (size_t i = begin + (quote_ == 0 ? indent : 0); i < end; ++i) {
      const char c = text_[i];
      const bool at_token = i == begin || IsBlank(text_[i - 1]) ||
                            (flow_depth_ > 0 &&
                             std::string_view("[{,:").find(text_[i - 1]) != std::string_view::npos);
      if (quote_ != 0) {
        if (quote_ == '"' && c == '\\') {
          ++i;
        } else if (c == quote_) {
          if (quote_ == '\'' && i + 1 < end && text_[i + 1] == '\'') {
            ++i;
          } else {
            quote_ = 0;
          }
        }
        continue;
      }
      if (c == '#' && at_token) break;  // comment
      const bool indicator_colon =
          c == ':' && (i + 1 == end || IsBlank(text_[i + 1]) ||
                       (flow_depth_ > 0 &&
                        std::string_view(",]}").find(text_[i + 1]) != std::string_view::npos));
      if (flow_depth_ > 0) {
        if (c == '[' || c == '{' || c == ']' || c == '}' || c == ',' || indicator_colon) {
          RETURN_IF_ERROR_(EndPlainRun(&run, i));
        }
        if (c == '[' || c == '{') {
          if (++flow_depth_ > limits_.max_depth) {
            return Fail(i, absl::StrCat("document nesting exceeds the depth limit (",
                                        limits_.max_depth, " levels)"));
          }
          RETURN_IF_ERROR_(AddNodes(1, i));
        } else if (c == ']' || c == '}') {
          --flow_depth_;
        } else if (c == ',' || indicator_colon || ((c == '&' || c == '*') && at_token)) {
          RETURN_IF_ERROR_(AddNodes(1, i));
        } else if ((c == '"' || c == '\'') && at_token) {
          quote_ = c;
        } else if (!IsBlank(c) && run == absl::string_view::npos) {
          run = i;
        }
        continue;
      }
      // Block context.
      if (IsBlank(c)) continue;
      if (value_position) {
        if (c == '[' || c == '{') {
          flow_depth_ = 1;
          value_position = false;
          RETURN_IF_ERROR_(AddNodes(1, i));
          continue;
        }
        if (c == '"' || c == '\'') {
          quote_ = c;
          value_position = false;
          RETURN_IF_ERROR_(AddNodes(1, i));
          continue;
        }
        if ((c == '-' || c == '?' || c == ':') && (i + 1 == end || IsBlank(text_[i + 1]))) {
          continue;  // entry indicators; the value that follows is counted
        }
        if (c == '|' || c == '>') {
          // A block scalar header: its content lines are skipped.
          size_t j = i + 1;
          while (j < end && (std::isdigit(static_cast<unsigned char>(text_[j])) ||
                             text_[j] == '+' || text_[j] == '-')) {
            ++j;
          }
          while (j < end && IsBlank(text_[j])) ++j;
          if (j == end || text_[j] == '#') {
            block_scalar_parent_ = static_cast<int>(indent);
            RETURN_IF_ERROR_(AddNodes(1, i));
            return absl::OkStatus();
          }
        }
        if (c == '&' || c == '!') {  // anchor or tag before the value (anchors cost too)
          if (c == '&') RETURN_IF_ERROR_(AddNodes(1, i));
          while (i + 1 < end && !IsBlank(text_[i + 1])) ++i;
          continue;
        }
        value_position = false;
        run = i;
        RETURN_IF_ERROR_(AddNodes(1, i));
        continue;
      }
      // Inside a plain scalar: a mapping indicator starts a value.
      if (indicator_colon) {
        RETURN_IF_ERROR_(EndPlainRun(&run, i));
        value_position = true;
      }
    }
    // The line ends (or a comment starts) inside the current plain run.
    size_t line_end = end;
    for (size_t i = (run == absl::string_view::npos ? end : run); i < end; ++i) {
      if (text_[i] == '#' && i > begin && IsBlank(text_[i - 1])) {
        line_end = i;
        break;
      }
    }
    return EndPlainRun(&run, line_end);
  }

  absl::string_view text_;
  const YamlLimits& limits_;
  int flow_depth_ = 0;
  char quote_ = 0;
  int block_scalar_parent_ = -1;
  size_t nodes_ = 0;
};

// Thrown from the event handler to abort the parse; carries a ready message.
struct TreeError {
  SourceLocation location;
  std::string message;
};

// Builds the tree from parser events, charging every node (and every alias expansion) against
// the limits as it goes, so a hostile document fails as soon as it crosses a budget.
// Not thread safe: one per parse, driven by yaml-cpp on the parser thread.
class TreeBuilder final : public YAML::EventHandler {
 public:
  explicit TreeBuilder(const YamlLimits& limits) : limits_(limits) {}

  YamlNodePtr TakeRoot() { return std::move(root_); }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto node = std::make_shared<YamlNode>();
    node->kind = YamlNode::Kind::kNull;
    node->location = ToLocation(mark);
    Leaf(std::move(node), mark, anchor);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    if (FirstInvalidUtf8(value) != absl::string_view::npos) {
      throw TreeError{ToLocation(mark), "scalar is not valid UTF-8"};
    }
    auto node = std::make_shared<YamlNode>();
    node->kind = YamlNode::Kind::kScalar;
    node->scalar = value;
    node->plain = tag == "?";
    if (tag != "?" && tag != "!") node->tag = tag;
    node->location = ToLocation(mark);
    node->subtree_bytes = value.size();
    Leaf(std::move(node), mark, anchor);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (open_anchors_.count(anchor) > 0) {
      throw TreeError{ToLocation(mark), "alias refers to a node that contains it (alias cycle)"};
    }
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) {
      throw TreeError{ToLocation(mark), "alias refers to an unknown anchor"};
    }
    const YamlNodePtr& target = it->second;
    Charge(target->subtree_nodes, target->subtree_bytes, target->subtree_depth, mark);
    Attach(target, mark);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(YamlNode::Kind::kSequence, mark, tag, anchor);
  }
  void OnSequenceEnd() override { Close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(YamlNode::Kind::kMap, mark, tag, anchor);
  }
  void OnMapEnd() override { Close(); }

 private:
  struct Frame {
    std::shared_ptr<YamlNode> node;
    YAML::anchor_t anchor = YAML::NullAnchor;
    bool have_key = false;
    std::string key;
    SourceLocation key_location;
    std::unordered_set<std::string> keys;
  };

  void Charge(size_t nodes, size_t bytes, int depth, const YAML::Mark& mark) {
    nodes_ += nodes;
    bytes_ += bytes;
    if (nodes_ > limits_.max_nodes) {
      throw TreeError{ToLocation(mark),
                      absl::StrCat("document exceeds the node budget (", limits_.max_nodes,
                                   " nodes, counting alias expansions)")};
    }
    if (bytes_ > limits_.max_expanded_bytes) {
      throw TreeError{ToLocation(mark), absl::StrCat("document exceeds the expanded size budget (",
                                                     limits_.max_expanded_bytes,
                                                     " bytes, counting alias expansions)")};
    }
    const int total_depth = static_cast<int>(stack_.size()) + depth;
    if (total_depth > limits_.max_depth) {
      throw TreeError{ToLocation(mark), absl::StrCat("document nesting exceeds the depth limit (",
                                                     limits_.max_depth, " levels)")};
    }
  }

  void Leaf(std::shared_ptr<YamlNode> node, const YAML::Mark& mark, YAML::anchor_t anchor) {
    Charge(1, node->subtree_bytes, 1, mark);
    if (anchor != YAML::NullAnchor) anchors_[anchor] = node;
    Attach(std::move(node), mark);
  }

  void Open(YamlNode::Kind kind, const YAML::Mark& mark, const std::string& tag,
            YAML::anchor_t anchor) {
    if (!stack_.empty() && stack_.back().node->kind == YamlNode::Kind::kMap &&
        !stack_.back().have_key) {
      throw TreeError{ToLocation(mark), "mapping keys must be scalars"};
    }
    Charge(1, 0, 1, mark);
    auto node = std::make_shared<YamlNode>();
    node->kind = kind;
    node->location = ToLocation(mark);
    if (tag != "?" && tag != "!") node->tag = tag;
    if (anchor != YAML::NullAnchor) open_anchors_.insert(anchor);
    Frame frame;
    frame.node = std::move(node);
    frame.anchor = anchor;
    stack_.push_back(std::move(frame));
  }

  void Close() {
    Frame frame = std::move(stack_.back());
    stack_.pop_back();
    std::shared_ptr<YamlNode>& node = frame.node;
    if (frame.have_key) {
      // A key without a value cannot happen with yaml-cpp's events; be defensive.
      throw TreeError{frame.key_location, "mapping key without a value"};
    }
    node->subtree_nodes = 1;
    node->subtree_bytes = 0;
    int child_depth = 0;
    auto add = [&](const YamlNodePtr& child) {
      node->subtree_nodes += child->subtree_nodes;
      node->subtree_bytes += child->subtree_bytes;
      child_depth = std::max(child_depth, child->subtree_depth);
    };
    for (const auto& item : node->items) add(item);
    for (const auto& entry : node->entries) {
      node->subtree_bytes += entry.key.size();
      add(entry.value);
    }
    node->subtree_depth = 1 + child_depth;
    if (frame.anchor != YAML::NullAnchor) {
      open_anchors_.erase(frame.anchor);
      anchors_[frame.anchor] = node;
    }
    Attach(std::move(node), YAML::Mark::null_mark());
  }

  // Adds a finished node to the enclosing container (or makes it the root).
  void Attach(YamlNodePtr node, const YAML::Mark& mark) {
    if (stack_.empty()) {
      if (!root_) root_ = std::move(node);
      return;
    }
    Frame& parent = stack_.back();
    if (parent.node->kind == YamlNode::Kind::kSequence) {
      parent.node->items.push_back(std::move(node));
      return;
    }
    if (!parent.have_key) {
      const SourceLocation where = node->location.line > 0 ? node->location : ToLocation(mark);
      if (node->kind == YamlNode::Kind::kScalar) {
        parent.key = node->scalar;
      } else if (node->kind == YamlNode::Kind::kNull) {
        parent.key = "";
      } else {
        throw TreeError{where, "mapping keys must be scalars"};
      }
      if (!parent.keys.insert(parent.key).second) {
        throw TreeError{where, absl::StrCat("duplicate mapping key \"", parent.key, "\"")};
      }
      bytes_ += parent.key.size();
      parent.key_location = where;
      parent.have_key = true;
      return;
    }
    parent.node->entries.push_back(
        YamlNode::Entry{std::move(parent.key), parent.key_location, std::move(node)});
    parent.key.clear();
    parent.have_key = false;
  }

  const YamlLimits& limits_;
  std::vector<Frame> stack_;
  std::unordered_map<YAML::anchor_t, YamlNodePtr> anchors_;
  std::unordered_set<YAML::anchor_t> open_anchors_;
  YamlNodePtr root_;
  size_t nodes_ = 0;
  size_t bytes_ = 0;
};

// Runs `fn` on a fresh thread with a `stack_bytes` stack and waits for it.
absl::Status RunOnLargeStack(size_t stack_bytes, std::function<void()> fn) {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return absl::InternalError("pthread_attr_init failed");
  pthread_attr_setstacksize(&attr, stack_bytes);
  auto trampoline = [](void* arg) -> void* {
    (*static_cast<std::function<void()>*>(arg))();
    return nullptr;
  };
  pthread_t thread;
  const int rc = pthread_create(&thread, &attr, trampoline, &fn);
  pthread_attr_destroy(&attr);
  if (rc != 0) return absl::UnavailableError("cannot start the YAML parser thread");
  pthread_join(thread, nullptr);
  return absl::OkStatus();
}

bool IsCoreInt(absl::string_view s, int64_t* out) {
  if (s.empty()) return false;
  int base = 10;
  absl::string_view digits = s;
  bool negative = false;
  if (absl::StartsWith(s, "0x")) {
    base = 16;
    digits = s.substr(2);
  } else if (absl::StartsWith(s, "0o")) {
    base = 8;
    digits = s.substr(2);
  } else {
    if (digits[0] == '-' || digits[0] == '+') {
      negative = digits[0] == '-';
      digits.remove_prefix(1);
    }
  }
  if (digits.empty()) return false;
  for (char c : digits) {
    const bool ok = base == 16  ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                    : base == 8 ? (c >= '0' && c <= '7')
                                : (c >= '0' && c <= '9');
    if (!ok) return false;
  }
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return false;
  if (negative) {
    if (value > static_cast<uint64_t>(INT64_MAX) + 1) return false;
    *out = value == static_cast<uint64_t>(INT64_MAX) + 1 ? INT64_MIN : -static_cast<int64_t>(value);
  } else {
    if (value > static_cast<uint64_t>(INT64_MAX)) return false;
    *out = static_cast<int64_t>(value);
  }
  return true;
}

// [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
bool IsCoreFloat(absl::string_view s, double* out) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  size_t int_digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++int_digits;
  size_t frac_digits = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++frac_digits;
  }
  if (int_digits == 0 && frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    size_t exp_digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  if (i != s.size()) return false;
  absl::string_view body = s;
  if (!body.empty() && body[0] == '+') body.remove_prefix(1);
  double value = 0;
  auto [ptr, ec] = std::from_chars(body.data(), body.data() + body.size(), value);
  if (ec != std::errc() || ptr != body.data() + body.size() || !std::isfinite(value)) {
    return false;
  }
  *out = value;
  return true;
}

}  // namespace

std::string FormatLocation(const SourceLocation& location) {
  if (location.line <= 0) return "";
  return absl::StrCat("line ", location.line, ", column ", location.column);
}

const YamlNode::Entry* YamlNode::FindEntry(std::string_view key) const {
  for (const Entry& entry : entries) {
    if (entry.key == key) return &entry;
  }
  return nullptr;
}

const YamlNode* YamlNode::Find(std::string_view key) const {
  const Entry* entry = FindEntry(key);
  return entry == nullptr ? nullptr : entry->value.get();
}

absl::StatusOr<YamlNodePtr> ParseYaml(std::string_view text, const YamlLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("pipeline YAML is ", text.size(), " bytes; the limit is ", limits.max_bytes));
  }
  if (const size_t bad = FirstInvalidUtf8(Sv(text)); bad != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        WithLocation(LocationOfOffset(Sv(text), bad), "pipeline YAML must be UTF-8"));
  }
  if (absl::Status s = PreScanner(Sv(text), limits).Run(); !s.ok()) return s;
  absl::Status status;
  YamlNodePtr root;
  auto parse = [&] {
    try {
      std::istringstream stream{std::string(text)};
      YAML::Parser parser(stream);
      TreeBuilder builder(limits);
      parser.HandleNextDocument(builder);
      root = builder.TakeRoot();
    } catch (const TreeError& e) {
      status = absl::InvalidArgumentError(WithLocation(e.location, e.message));
    } catch (const YAML::DeepRecursion& e) {
      status = absl::InvalidArgumentError(WithLocation(
          ToLocation(e.mark), absl::StrCat("document nesting exceeds the depth limit (",
                                           limits.max_depth, " levels)")));
    } catch (const YAML::Exception& e) {
      status = absl::InvalidArgumentError(
          WithLocation(ToLocation(e.mark), absl::StrCat("invalid YAML: ", e.msg)));
    } catch (const std::exception& e) {
      status = absl::InvalidArgumentError(absl::StrCat("invalid YAML: ", e.what()));
    } catch (...) {
      status = absl::InvalidArgumentError("invalid YAML");
    }
  };
  absl::Status thread_status = RunOnLargeStack(kParserStackBytes, parse);
  if (!thread_status.ok()) return thread_status;
  if (!status.ok()) return status;
  if (!root) {
    auto empty = std::make_shared<YamlNode>();
    empty->kind = YamlNode::Kind::kNull;
    root = std::move(empty);
  }
  return root;
}

nlohmann::ordered_json YamlScalarToJson(const YamlNode& node) {
  if (node.kind == YamlNode::Kind::kNull) return nullptr;
  if (node.kind != YamlNode::Kind::kScalar) return nullptr;
  const std::string& s = node.scalar;
  absl::string_view tag = node.tag;
  const bool core = node.plain || tag == "tag:yaml.org,2002:int" ||
                    tag == "tag:yaml.org,2002:float" || tag == "tag:yaml.org,2002:bool" ||
                    tag == "tag:yaml.org,2002:null";
  if (!core) return s;
  if (node.plain || tag == "tag:yaml.org,2002:null") {
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  }
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  int64_t i = 0;
  if (IsCoreInt(s, &i)) return i;
  double d = 0;
  if (IsCoreFloat(s, &d)) return d;
  return s;
}

nlohmann::ordered_json YamlToJson(const YamlNode& node) {
  switch (node.kind) {
    case YamlNode::Kind::kNull:
    case YamlNode::Kind::kScalar:
      return YamlScalarToJson(node);
    case YamlNode::Kind::kSequence: {
      nlohmann::ordered_json out = nlohmann::ordered_json::array();
      for (const auto& item : node.items) out.push_back(YamlToJson(*item));
      return out;
    }
    case YamlNode::Kind::kMap: {
      // Keys are already unique: append directly (ordered_map's insert is a linear search,
      // quadratic over a hostile 100k-key mapping).
      nlohmann::ordered_json out = nlohmann::ordered_json::object();
      auto& container = static_cast<nlohmann::ordered_json::object_t::Container&>(
          out.get_ref<nlohmann::ordered_json::object_t&>());
      container.reserve(node.entries.size());
      for (const auto& entry : node.entries) {
        container.emplace_back(entry.key, YamlToJson(*entry.value));
      }
      return out;
    }
  }
  return nullptr;
}

nlohmann::json YamlToSortedJson(const YamlNode& node) {
  switch (node.kind) {
    case YamlNode::Kind::kNull:
    case YamlNode::Kind::kScalar: {
      const nlohmann::ordered_json v = YamlScalarToJson(node);
      if (v.is_string()) return v.get<std::string>();
      if (v.is_boolean()) return v.get<bool>();
      if (v.is_number_integer()) return v.get<int64_t>();
      if (v.is_number_float()) return v.get<double>();
      return nullptr;
    }
    case YamlNode::Kind::kSequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node.items) out.push_back(YamlToSortedJson(*item));
      return out;
    }
    case YamlNode::Kind::kMap: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& entry : node.entries) out[entry.key] = YamlToSortedJson(*entry.value);
      return out;
    }
  }
  return nullptr;
}

}  // namespace elexirion::pipeline
