#include "server/pipeline/prompt_builder.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/pipeline/elixir_format.h"
#include "server/pipeline/strings.h"

namespace elexirion::pipeline {
namespace {

using json = nlohmann::json;

const json& Unwrap(const json& result) {
  if (result.is_object()) {
    auto type = result.find("type");
    auto resolved = result.find("resolved_result");
    if (type != result.end() && *type == "async_stream" && resolved != result.end()) {
      return *resolved;
    }
  }
  return result;
}

absl::StatusOr<std::string> FormatValue(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() || value.is_array()) return JasonEncode(value, /*pretty=*/true);
  if (value.is_null()) return std::string("nil");
  return ElixirToString(value);
}

}  // namespace

absl::StatusOr<std::string> RenderPreviousResponse(const json& result,
                                                   const std::optional<std::string>& extract,
                                                   bool strict) {
  if (!extract.has_value()) {
    const json& r = Unwrap(result);
    if (r.is_string()) return r.get<std::string>();
    if (r.is_object()) return JasonEncode(r, /*pretty=*/true);
    return JasonEncode(r, /*pretty=*/false);  // Elixir would `inspect`; close for JSON values
  }
  const json& r = Unwrap(result);
  const json* cur = &r;
  bool found = r.is_object();
  if (found) {
    for (absl::string_view field : absl::StrSplit(*extract, '.')) {
      if (!cur->is_object()) {
        found = false;
        break;
      }
      auto it = cur->find(std::string(field));
      if (it == cur->end()) {
        found = false;
        break;
      }
      cur = &*it;
    }
  }
  if (found) return FormatValue(*cur);
  if (!strict) return std::string("nil");
  std::vector<std::string> keys;
  if (r.is_object()) {
    for (auto it = r.begin(); it != r.end(); ++it) keys.push_back(it.key());
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "Field '", *extract, "' not found in previous response. Available fields: ",
      keys.empty() ? "none (response is not a map/object)" : absl::StrJoin(keys, ", ")));
}

absl::StatusOr<std::string> BuildPrompt(const std::vector<PromptPart>& parts,
                                        const PromptBuildContext& context) {
  std::vector<std::string> rendered;
  rendered.reserve(parts.size());
  for (const PromptPart& part : parts) {
    switch (part.kind) {
      case PromptPartKind::kStatic: {
        json value = part.content;
        if (value.is_string()) {
          auto interpolated =
              InterpolateString(value.get_ref<const std::string&>(), *context.templates);
          if (!interpolated.ok()) return interpolated.status();
          value = std::move(*interpolated);
        }
        if (value.is_null() || (value.is_boolean() && !value.get<bool>())) {
          rendered.emplace_back();
          break;
        }
        auto text = ElixirToString(value);
        if (!text.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("static prompt part: ", text.status().message()));
        }
        rendered.push_back(std::move(*text));
        break;
      }
      case PromptPartKind::kFile: {
        auto path = InterpolateToText(part.path, *context.templates);
        if (!path.ok()) return path.status();
        if (context.prompts == nullptr) {
          return absl::FailedPreconditionError(
              absl::StrCat("file prompt part \"", *path, "\": no prompts directory is configured"));
        }
        auto content = context.prompts->Read(*path, context.max_file_bytes);
        if (!content.ok()) {
          return absl::Status(content.status().code(),
                              absl::StrCat("file prompt part: ", content.status().message()));
        }
        rendered.push_back(std::move(*content));
        break;
      }
      case PromptPartKind::kPreviousResponse: {
        auto it = context.results->find(part.step);
        if (it == context.results->end()) {
          return absl::InvalidArgumentError(
              absl::StrCat("previous_response: no result for step \"", part.step, "\""));
        }
        auto text = RenderPreviousResponse(*it, part.extract, part.strict);
        if (!text.ok()) {
          return absl::Status(text.status().code(),
                              absl::StrCat("previous_response from step \"", part.step,
                                           "\": ", text.status().message()));
        }
        rendered.push_back(std::move(*text));
        break;
      }
      case PromptPartKind::kSessionContext:
      case PromptPartKind::kClaudeContinue:
        rendered.emplace_back();
        break;
    }
  }
  return absl::StrJoin(rendered, "\n");
}

}  // namespace elexirion::pipeline
