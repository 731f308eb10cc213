// Python string semantics that DSPy's formats depend on: str.strip() (ASCII whitespace plus
// \x1c-\x1f), str.splitlines(), textwrap.dedent(), the ChatAdapter's field-header regex
// `\[\[ ## (\w+) ## \]\]` anchored at the start, MIPRO's strip_prefix, DSPy's normalize_text and
// Signature's infer_prefix.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace elexirion::optimizer {

std::string PyStrip(std::string_view s);
std::vector<std::string> PySplitLines(std::string_view s);
std::string PyDedent(std::string_view s);

// True when `line` starts with "[[ ## <word> ## ]]"; sets the word and the marker's length.
bool MatchFieldHeader(std::string_view line, std::string* name, size_t* marker_end);

// dspy.propose.utils.strip_prefix: drops a leading "Label words:" (up to five words, optional
// leading '*'/spaces) and surrounding double quotes.
std::string StripProposalPrefix(std::string_view text);

// dspy.evaluate.metrics.normalize_text: lower-case, drop ASCII punctuation, drop the articles
// a/an/the as words, squash whitespace. (DSPy also applies Unicode NFD first; non-ASCII text
// is kept as is here.)
std::string NormalizeText(std::string_view s);

// dspy.signatures.signature.infer_prefix(name) + ":" ("next_tool_name" -> "Next Tool Name:").
std::string InferPrefix(std::string_view name);

}  // namespace elexirion::optimizer
