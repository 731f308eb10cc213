#include "server/optimizer/text_util.h"

#include <cctype>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace elexirion::optimizer {
namespace {

bool IsPySpace(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
         (c >= 0x1c && c <= 0x1f);
}

bool IsLineBreak(unsigned char c) {
  return c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1e);
}

bool IsWordChar(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

bool IsPunct(unsigned char c) { return c < 0x80 && std::ispunct(c); }

std::vector<std::string> SplitWords(std::string_view s) {
  std::vector<std::string> words;
  std::string cur;
  for (unsigned char c : s) {
    if (IsPySpace(c)) {
      if (!cur.empty()) words.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(c));
    }
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

}  // namespace

std::string PyStrip(std::string_view s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && IsPySpace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && IsPySpace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::vector<std::string> PySplitLines(std::string_view s) {
  std::vector<std::string> lines;
  size_t start = 0;
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (IsLineBreak(c)) {
      lines.emplace_back(s.substr(start, i - start));
      if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      ++i;
      start = i;
    } else {
      ++i;
    }
  }
  if (start < s.size()) lines.emplace_back(s.substr(start));
  return lines;
}

std::string PyDedent(std::string_view s) {
  // textwrap.dedent: whitespace-only lines become empty; the longest common leading
  // whitespace of the other lines is removed.
  std::vector<std::string> lines = absl::StrSplit(absl::string_view(s.data(), s.size()), '\n');
  std::string margin;
  bool have_margin = false;
  for (std::string& line : lines) {
    size_t n = 0;
    while (n < line.size() && (line[n] == ' ' || line[n] == '\t')) ++n;
    if (n == line.size()) {
      line.clear();
      continue;
    }
    const std::string indent = line.substr(0, n);
    if (!have_margin) {
      margin = indent;
      have_margin = true;
    } else {
      size_t k = 0;
      while (k < margin.size() && k < indent.size() && margin[k] == indent[k]) ++k;
      margin.resize(k);
    }
  }
  if (!margin.empty()) {
    for (std::string& line : lines) {
      if (line.compare(0, margin.size(), margin) == 0) line = line.substr(margin.size());
    }
  }
  return absl::StrJoin(lines, "\n");
}

bool MatchFieldHeader(std::string_view line, std::string* name, size_t* marker_end) {
  static constexpr std::string_view kOpen = "[[ ## ";
  static constexpr std::string_view kClose = " ## ]]";
  if (line.substr(0, kOpen.size()) != kOpen) return false;
  size_t i = kOpen.size();
  const size_t begin = i;
  while (i < line.size() && IsWordChar(static_cast<unsigned char>(line[i]))) ++i;
  if (i == begin) return false;
  if (line.substr(i, kClose.size()) != kClose) return false;
  *name = std::string(line.substr(begin, i - begin));
  *marker_end = i + kClose.size();
  return true;
}

std::string StripProposalPrefix(std::string_view text) {
  // ^[\*\s]*(([\w'\-]+\s+){0,4}[\w'\-]+):\s*
  size_t i = 0;
  while (i < text.size() && (text[i] == '*' || IsPySpace(static_cast<unsigned char>(text[i])))) ++i;
  auto word_char = [](unsigned char c) { return IsWordChar(c) || c == '\'' || c == '-'; };
  size_t j = i;
  int words = 0;
  bool matched = false;
  while (j < text.size() && words < 5) {
    const size_t w = j;
    while (j < text.size() && word_char(static_cast<unsigned char>(text[j]))) ++j;
    if (j == w) break;
    ++words;
    if (j < text.size() && text[j] == ':') {
      matched = true;
      ++j;
      break;
    }
    const size_t sp = j;
    while (j < text.size() && IsPySpace(static_cast<unsigned char>(text[j]))) ++j;
    if (j == sp) break;
  }
  std::string_view rest = text;
  if (matched) {
    while (j < text.size() && IsPySpace(static_cast<unsigned char>(text[j]))) ++j;
    rest = text.substr(j);
  }
  size_t b = 0;
  size_t e = rest.size();
  while (b < e && rest[b] == '"') ++b;
  while (e > b && rest[e - 1] == '"') --e;
  return std::string(rest.substr(b, e - b));
}

std::string NormalizeText(std::string_view s) {
  std::string lowered;
  lowered.reserve(s.size());
  for (unsigned char c : s) {
    if (IsPunct(c)) continue;
    lowered.push_back(static_cast<char>(c < 0x80 ? std::tolower(c) : c));
  }
  // Articles are removed as whole words (\b boundaries); punctuation is already gone, so a
  // word is a maximal run of non-space characters.
  std::vector<std::string> kept;
  for (std::string& w : SplitWords(lowered)) {
    if (w == "a" || w == "an" || w == "the") continue;
    kept.push_back(std::move(w));
  }
  return absl::StrJoin(kept, " ");
}

std::string InferPrefix(std::string_view name) {
  // Split camelCase, snake_case and digit boundaries, then title-case each word (acronyms kept).
  std::string s(name);
  std::string spaced;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (i > 0) {
      const unsigned char p = static_cast<unsigned char>(s[i - 1]);
      const bool next_lower =
          i + 1 < s.size() && std::islower(static_cast<unsigned char>(s[i + 1]));
      if (std::isupper(c) &&
          (std::islower(p) || std::isdigit(p) || (std::isupper(p) && next_lower))) {
        spaced.push_back('_');
      } else if (std::isdigit(c) && std::isalpha(p)) {
        spaced.push_back('_');
      } else if (std::isalpha(c) && std::isdigit(p)) {
        spaced.push_back('_');
      }
    }
    spaced.push_back(static_cast<char>(c));
  }
  std::vector<std::string> words;
  for (absl::string_view w : absl::StrSplit(spaced, '_')) {
    std::string word(w);
    bool upper = false;
    bool has_cased = false;
    for (unsigned char c : word) {
      if (std::isalpha(c)) {
        has_cased = true;
        if (std::isupper(c)) upper = true;
        if (std::islower(c)) {
          upper = false;
          break;
        }
      }
    }
    if (!(has_cased && upper)) {
      for (size_t k = 0; k < word.size(); ++k) {
        const unsigned char c = static_cast<unsigned char>(word[k]);
        word[k] = static_cast<char>(k == 0 ? std::toupper(c) : std::tolower(c));
      }
    }
    words.push_back(std::move(word));
  }
  return absl::StrCat(absl::StrJoin(words, " "), ":");
}

}  // namespace elexirion::optimizer
