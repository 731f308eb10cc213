// DSPy's prompt wire formats, byte for byte (DSPy 3.3.1 dspy/adapters/chat_adapter.py,
// json_adapter.py, base.py, utils.py):
//
// ChatAdapter
//   system  = field description + "\n" + field structure + "\n" + task description:
//     Your input fields are:
//     1. `question` (str):<space>          one line per field, "N. `name` (Type): desc"
//     Your output fields are:              (whole block stripped: the last line loses its
//     1. `answer` (str):                    trailing space)
//     All interactions will be structured in the following way, with the appropriate values filled
//     in.
//
//     [[ ## question ## ]]
//     {question}
//
//     [[ ## answer ## ]]
//     {answer}        # note: the value you produce must be a single int value   (non-str outputs)
//
//     [[ ## completed ## ]]
//     In adhering to this structure, your objective is:<space>
//             <instruction line 1>         (each line indented by 8 spaces, after dedent)
//   demos   = incomplete demos first (prefixed "This is an example of the task, though some
//             input or output fields are not supplied.", missing outputs "Not supplied for this
//             particular example. "), then complete ones; each a user turn (present input
//             fields) and an assistant turn (output fields, then "\n\n[[ ## completed ## ]]\n");
//             demos with no input or no output field are dropped
//   user    = present input fields, then "Respond with the corresponding output fields,
//             starting with the field `[[ ## a ## ]]`, then `[[ ## b ## ]]` (must be formatted as
//             a valid Python int), and then ending with the marker for `[[ ## completed ## ]]`."
//   parse   = "[[ ## name ## ]]" at the start of a stripped line opens a section (text after the
//             marker on that line belongs to it); first occurrence wins; unknown sections are
//             ignored; values converted per type; fields whose type admits None may be missing;
//             any other missing field is a parse failure.
// JSONAdapter
//   same field description; the structure block lists inputs as [[ ## ]] sections and outputs
//   as a json.dumps(indent=2) object of placeholders; the reminder is "Respond with a JSON object
//   in the following order of fields: `a`, then `b` (must be formatted as a valid Python int).";
//   demo assistant turns are json.dumps(outputs, indent=2); requests ask for a JSON object;
//   parsing takes the first JSON object of the text and keeps the output fields.
// Values: str fields holding a list render as a numbered «blob» list; other lists and objects
// as json.dumps (", ", ": "), everything else as Python's str().
//
// Thread safety: pure functions over caller-owned values.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/llm/llm_client.h"
#include "server/optimizer/field_types.h"

namespace elexirion::optimizer {

using ojson = nlohmann::ordered_json;

struct AdapterField {
  std::string name;
  FieldType type;
  // Empty: no description (DSPy's "${name}" placeholder).
  std::string description;
};

// A signature as the adapters see it (ChainOfThought's `reasoning` already prepended to the
// outputs).
struct AdapterSignature {
  std::vector<AdapterField> inputs;
  std::vector<AdapterField> outputs;
  std::string instructions;
};

enum class AdapterKind { kChat, kJson };
const char* AdapterKindName(AdapterKind kind);

struct FormattedPrompt {
  std::string system;
  std::vector<llm::Message> messages;  // demo turns, then the request
};

// Formats a request. `inputs` holds input field values (absent fields are not rendered).
FormattedPrompt FormatPrompt(AdapterKind kind, const AdapterSignature& signature,
                             const std::vector<ojson>& demos, const ojson& inputs);

// Individual parts (exposed for tests and the proposer).
std::string FormatSystemMessage(AdapterKind kind, const AdapterSignature& signature);
std::string FormatFieldValue(const FieldType& type, const ojson& value);

// Parses a completion into the output fields (in signature order). INVALID_ARGUMENT
// ("adapter parse failure: ...") when it does not fit.
absl::StatusOr<ojson> ParseCompletion(AdapterKind kind, const AdapterSignature& signature,
                                      const std::string& completion);

// What a ChatAdapter assistant turn for `outputs` looks like (used by test models and docs).
std::string FormatChatCompletion(const AdapterSignature& signature, const ojson& outputs);

}  // namespace elexirion::optimizer
