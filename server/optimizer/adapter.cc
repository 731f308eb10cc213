#include "server/optimizer/adapter.h"

#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "server/optimizer/py_format.h"
#include "server/optimizer/text_util.h"

namespace elexirion::optimizer {
namespace {

constexpr char kIntro[] =
    "All interactions will be structured in the following way, with the appropriate values "
    "filled in.";
constexpr char kIncompletePrefix[] =
    "This is an example of the task, though some input or output fields are not supplied.";
constexpr char kNotSuppliedExample[] = "Not supplied for this particular example. ";
constexpr char kNotSuppliedHistory[] = "Not supplied for this conversation history message. ";

std::string FormatBlob(const std::string& blob) {
  if (blob.find('\n') == std::string::npos && blob.find("«") == std::string::npos &&
      blob.find("»") == std::string::npos) {
    return absl::StrCat("«", blob, "»");
  }
  return absl::StrCat("«««\n    ", absl::StrReplaceAll(blob, {{"\n", "\n    "}}), "\n»»»");
}

std::string FieldDescriptions(const std::vector<AdapterField>& fields) {
  std::vector<std::string> lines;
  for (size_t i = 0; i < fields.size(); ++i) {
    lines.push_back(absl::StrCat(i + 1, ". `", fields[i].name, "` (", fields[i].type.name,
                                 "): ", fields[i].description));
  }
  return PyStrip(absl::StrJoin(lines, "\n"));
}

// "[[ ## name ## ]]\n<value>" sections joined by blank lines, stripped.
std::string Sections(const std::vector<std::pair<const AdapterField*, ojson>>& fields) {
  std::vector<std::string> out;
  for (const auto& [field, value] : fields) {
    out.push_back(
        absl::StrCat("[[ ## ", field->name, " ## ]]\n", FormatFieldValue(field->type, value)));
  }
  return PyStrip(absl::StrJoin(out, "\n\n"));
}

std::string Placeholders(const std::vector<AdapterField>& fields, bool is_output) {
  std::vector<std::pair<const AdapterField*, ojson>> values;
  for (const AdapterField& f : fields) {
    values.push_back({&f, ojson(FieldPlaceholder(f.name, f.type, is_output))});
  }
  return Sections(values);
}

std::string TaskDescription(const std::string& instructions) {
  std::string objective;
  for (const std::string& line : PySplitLines(PyDedent(instructions))) {
    absl::StrAppend(&objective, "\n        ", line);
  }
  return absl::StrCat("In adhering to this structure, your objective is: ", objective);
}

std::string FieldStructure(AdapterKind kind, const AdapterSignature& sig) {
  std::vector<std::string> parts;
  parts.push_back(kIntro);
  if (kind == AdapterKind::kChat) {
    parts.push_back(Placeholders(sig.inputs, false));
    parts.push_back(Placeholders(sig.outputs, true));
    parts.push_back("[[ ## completed ## ]]\n");
  } else {
    parts.push_back("Inputs will have the following structure:");
    parts.push_back(Placeholders(sig.inputs, false));
    parts.push_back("Outputs will be a JSON object with the following fields.");
    ojson obj = ojson::object();
    for (const AdapterField& f : sig.outputs) obj[f.name] = FieldPlaceholder(f.name, f.type, true);
    parts.push_back(PyJsonDumps(obj, 2));
  }
  return PyStrip(absl::StrJoin(parts, "\n\n"));
}

std::string UserContent(AdapterKind kind, const AdapterSignature& sig, const ojson& values,
                        const std::string& prefix, bool main_request) {
  std::vector<std::string> messages;
  messages.push_back(prefix);
  for (const AdapterField& f : sig.inputs) {
    auto it = values.find(f.name);
    if (it == values.end()) continue;
    messages.push_back(absl::StrCat("[[ ## ", f.name, " ## ]]\n", FormatFieldValue(f.type, *it)));
  }
  if (main_request) {
    std::vector<std::string> fields;
    if (kind == AdapterKind::kChat) {
      for (const AdapterField& f : sig.outputs) {
        fields.push_back(absl::StrCat("`[[ ## ", f.name, " ## ]]`", ReminderTypeInfo(f.type)));
      }
      messages.push_back(
          absl::StrCat("Respond with the corresponding output fields, starting with the field ",
                       absl::StrJoin(fields, ", then "),
                       ", and then ending with the marker for `[[ ## completed ## ]]`."));
    } else {
      for (const AdapterField& f : sig.outputs) {
        fields.push_back(absl::StrCat("`", f.name, "`", ReminderTypeInfo(f.type)));
      }
      messages.push_back(
          absl::StrCat("Respond with a JSON object in the following order of fields: ",
                       absl::StrJoin(fields, ", then "), "."));
    }
  }
  messages.push_back("");
  return PyStrip(absl::StrJoin(messages, "\n\n"));
}

std::string AssistantContent(AdapterKind kind, const AdapterSignature& sig, const ojson& values,
                             const char* missing) {
  if (kind == AdapterKind::kChat) {
    std::vector<std::pair<const AdapterField*, ojson>> fields;
    for (const AdapterField& f : sig.outputs) {
      auto it = values.find(f.name);
      fields.push_back({&f, it == values.end() ? ojson(missing) : *it});
    }
    return absl::StrCat(Sections(fields), "\n\n[[ ## completed ## ]]\n");
  }
  ojson obj = ojson::object();
  for (const AdapterField& f : sig.outputs) {
    auto it = values.find(f.name);
    obj[f.name] = it == values.end() ? ojson(missing) : *it;
  }
  return PyJsonDumps(obj, 2);
}

bool Has(const ojson& demo, const std::string& name) { return demo.contains(name); }

// Fills missing output fields whose type admits None; the result follows signature order.
absl::StatusOr<ojson> Complete(AdapterKind kind, const AdapterSignature& sig, const ojson& fields,
                               const std::string& completion) {
  ojson out = ojson::object();
  std::vector<std::string> missing;
  for (const AdapterField& f : sig.outputs) {
    auto it = fields.find(f.name);
    if (it != fields.end()) {
      out[f.name] = *it;
    } else if (AllowsNone(f.type)) {
      out[f.name] = nullptr;
    } else {
      missing.push_back(f.name);
    }
  }
  if (!missing.empty()) {
    std::vector<std::string> expected;
    for (const AdapterField& f : sig.outputs) expected.push_back(f.name);
    return absl::InvalidArgumentError(
        absl::StrCat("adapter parse failure (", AdapterKindName(kind), "): expected fields [",
                     absl::StrJoin(expected, ", "), "], missing [", absl::StrJoin(missing, ", "),
                     "] in the response (", completion.size(), " bytes)"));
  }
  return out;
}

absl::StatusOr<ojson> ParseChat(const AdapterSignature& sig, const std::string& completion) {
  std::vector<std::pair<std::optional<std::string>, std::vector<std::string>>> sections;
  sections.push_back({std::nullopt, {}});
  for (const std::string& line : PySplitLines(completion)) {
    const std::string stripped = PyStrip(line);
    std::string header;
    size_t marker_end = 0;
    if (MatchFieldHeader(stripped, &header, &marker_end)) {
      // The rest of the (unstripped) line after the marker belongs to the section.
      const size_t at = line.find(stripped);
      const std::string rest = PyStrip(line.substr(at + marker_end));
      sections.push_back({header, {}});
      if (!rest.empty()) sections.back().second.push_back(rest);
    } else {
      sections.back().second.push_back(line);
    }
  }
  ojson fields = ojson::object();
  for (const auto& [name, lines] : sections) {
    if (!name.has_value() || fields.contains(*name)) continue;
    const AdapterField* field = nullptr;
    for (const AdapterField& f : sig.outputs) {
      if (f.name == *name) field = &f;
    }
    if (field == nullptr) continue;
    const std::string value = PyStrip(absl::StrJoin(lines, "\n"));
    auto parsed = ParseFieldValue(value, field->type);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("adapter parse failure (chat): field ", *name,
                                                     ": ", parsed.status().message()));
    }
    fields[*name] = std::move(*parsed);
  }
  return Complete(AdapterKind::kChat, sig, fields, completion);
}

absl::StatusOr<ojson> ParseJson(const AdapterSignature& sig, const std::string& completion) {
  std::optional<ojson> parsed = LenientJsonLoads(completion);
  if (!parsed.has_value() || !parsed->is_object()) {
    if (std::optional<std::string> obj = FirstJsonObject(completion))
      parsed = LenientJsonLoads(*obj);
  }
  if (!parsed.has_value() || !parsed->is_object()) {
    return absl::InvalidArgumentError(
        "adapter parse failure (json): the response is not a JSON object");
  }
  ojson fields = ojson::object();
  for (const AdapterField& f : sig.outputs) {
    auto it = parsed->find(f.name);
    if (it == parsed->end()) continue;
    absl::StatusOr<ojson> value =
        f.type.IsStr() ? absl::StatusOr<ojson>(ojson(PyStr(*it)))
                       : (it->is_string() ? ParseFieldValue(it->get<std::string>(), f.type)
                                          : CoerceValue(*it, f.type));
    if (!value.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("adapter parse failure (json): field ", f.name,
                                                     ": ", value.status().message()));
    }
    fields[f.name] = std::move(*value);
  }
  return Complete(AdapterKind::kJson, sig, fields, completion);
}

}  // namespace

const char* AdapterKindName(AdapterKind kind) {
  return kind == AdapterKind::kChat ? "chat" : "json";
}

std::string FormatFieldValue(const FieldType& type, const ojson& value) {
  if (value.is_array() && type.IsStr()) {
    if (value.empty()) return "N/A";
    std::vector<std::string> items;
    for (const ojson& item : value) {
      items.push_back(FormatBlob(item.is_string() ? item.get<std::string>() : PyJsonDumps(item)));
    }
    if (items.size() == 1) return items[0];
    std::vector<std::string> lines;
    for (size_t i = 0; i < items.size(); ++i)
      lines.push_back(absl::StrCat("[", i + 1, "] ", items[i]));
    return absl::StrJoin(lines, "\n");
  }
  if (value.is_object() || value.is_array()) return PyJsonDumps(value);
  return PyStr(value);
}

std::string FormatSystemMessage(AdapterKind kind, const AdapterSignature& sig) {
  const std::string description =
      absl::StrCat("Your input fields are:\n", FieldDescriptions(sig.inputs),
                   "\nYour output fields are:\n", FieldDescriptions(sig.outputs));
  return absl::StrCat(description, "\n", FieldStructure(kind, sig), "\n",
                      TaskDescription(sig.instructions));
}

FormattedPrompt FormatPrompt(AdapterKind kind, const AdapterSignature& sig,
                             const std::vector<ojson>& demos, const ojson& inputs) {
  FormattedPrompt prompt;
  prompt.system = FormatSystemMessage(kind, sig);
  std::vector<const ojson*> complete;
  std::vector<const ojson*> incomplete;
  for (const ojson& demo : demos) {
    if (!demo.is_object()) continue;
    bool is_complete = true;
    bool has_input = false;
    bool has_output = false;
    for (const AdapterField& f : sig.inputs) {
      const bool present = Has(demo, f.name);
      has_input = has_input || present;
      is_complete = is_complete && present && !demo.at(f.name).is_null();
    }
    for (const AdapterField& f : sig.outputs) {
      const bool present = Has(demo, f.name);
      has_output = has_output || present;
      is_complete = is_complete && present && !demo.at(f.name).is_null();
    }
    if (is_complete) {
      complete.push_back(&demo);
    } else if (has_input && has_output) {
      incomplete.push_back(&demo);
    }
  }
  for (const ojson* demo : incomplete) {
    prompt.messages.push_back({"user", UserContent(kind, sig, *demo, kIncompletePrefix, false)});
    prompt.messages.push_back(
        {"assistant", AssistantContent(kind, sig, *demo, kNotSuppliedExample)});
  }
  for (const ojson* demo : complete) {
    prompt.messages.push_back({"user", UserContent(kind, sig, *demo, "", false)});
    prompt.messages.push_back(
        {"assistant", AssistantContent(kind, sig, *demo, kNotSuppliedHistory)});
  }
  const std::string request = UserContent(kind, sig, inputs, "", true);
  if (!request.empty()) prompt.messages.push_back({"user", request});
  return prompt;
}

absl::StatusOr<ojson> ParseCompletion(AdapterKind kind, const AdapterSignature& sig,
                                      const std::string& completion) {
  if (PyStrip(completion).empty()) {
    return absl::InvalidArgumentError(absl::StrCat("adapter parse failure (", AdapterKindName(kind),
                                                   "): the LM returned an empty response"));
  }
  return kind == AdapterKind::kChat ? ParseChat(sig, completion) : ParseJson(sig, completion);
}

std::string FormatChatCompletion(const AdapterSignature& sig, const ojson& outputs) {
  return AssistantContent(AdapterKind::kChat, sig, outputs, kNotSuppliedHistory);
}

}  // namespace elexirion::optimizer
