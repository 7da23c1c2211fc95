#include "deffile/build_args.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "deffile/go_text.h"

namespace berth::deffile::internal {
namespace {

struct Template {
  size_t begin = 0, end = 0;  // the whole `{{ NAME }}`
  absl::string_view name;
};

// The next `{{\s*(\w+)\s*}}` at or after `from`, leftmost first.
bool NextTemplate(absl::string_view s, size_t from, Template& t) {
  for (size_t q = s.find("{{", from); q != absl::string_view::npos; q = s.find("{{", q + 1)) {
    size_t i = q + 2;
    while (i < s.size() && IsReSpace(s[i])) ++i;
    size_t word = i;
    while (i < s.size() && IsReWord(s[i])) ++i;
    size_t word_end = i;
    while (i < s.size() && IsReSpace(s[i])) ++i;
    if (word_end > word && s.substr(i, 2) == "}}") {
      t = {q, i + 2, s.substr(word, word_end - word)};
      return true;
    }
  }
  return false;
}

const std::string* Lookup(absl::string_view name, const ArgMap& command_line,
                          const ArgMap& defaults) {
  if (auto it = command_line.find(name); it != command_line.end()) return &it->second;
  if (auto it = defaults.find(name); it != defaults.end()) return &it->second;
  return nullptr;
}

// A value's own references, one level: defined ones replaced, others kept.
std::string ResolveValue(absl::string_view value, const ArgMap& command_line,
                         const ArgMap& defaults, std::map<std::string, std::string>& used) {
  std::string out;
  size_t copied = 0;
  Template t;
  for (size_t from = 0; NextTemplate(value, from, t); from = t.end) {
    const std::string* v = Lookup(t.name, command_line, defaults);
    if (v == nullptr) continue;
    absl::StrAppend(&out, value.substr(copied, t.begin - copied), *v);
    used.emplace(t.name, *v);
    copied = t.end;
  }
  absl::StrAppend(&out, value.substr(copied));
  return out;
}

// Where '#' followed by a non-'!' byte starts (Apptainer's comment regexp
// `\s*[#][^!]\s*.*` needs both bytes before the template).
std::vector<size_t> CommentMarks(absl::string_view s) {
  std::vector<size_t> marks;
  for (size_t i = s.find('#'); i != absl::string_view::npos && i + 1 < s.size();
       i = s.find('#', i + 1)) {
    if (s[i + 1] != '!') marks.push_back(i);
  }
  return marks;
}

// Whether Apptainer skips the template at `begin`: the text it checks runs
// from the last newline (or from the end of the last substitution, whichever
// is later) to the template, and must hold a mark with its next byte.
bool IsCommentedOut(size_t begin, size_t copied, const std::vector<size_t>& newlines,
                    const std::vector<size_t>& marks) {
  if (begin < 2) return false;
  auto nl = std::lower_bound(newlines.begin(), newlines.end(), begin);
  size_t context = nl == newlines.begin() ? copied : std::max(copied, *std::prev(nl));
  auto mark = std::lower_bound(marks.begin(), marks.end(), begin - 1);
  return mark != marks.begin() && *std::prev(mark) >= context;
}

}  // namespace

absl::Status SplitKeyValue(absl::string_view text, std::string& key, std::string& value) {
  size_t eq = text.find('=');
  if (eq == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(GoQuote(text), " is not a key=value pair"));
  }
  key = std::string(TrimSpace(text.substr(0, eq)));
  if (key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("missing key portion in ", GoQuote(text)));
  }
  value = std::string(TrimSpace(text.substr(eq + 1)));
  return absl::OkStatus();
}

ArgMap ReadDefaults(absl::string_view arguments, std::vector<std::string>& warnings) {
  ArgMap defaults;
  for (const Line& line : SplitLines(arguments)) {
    absl::string_view text = TrimSpace(line.text);
    if (text.empty() || text.front() == '#') continue;
    std::string key, value;
    if (absl::Status st = SplitKeyValue(text, key, value); !st.ok()) {
      warnings.push_back(
          absl::StrCat("Skipping ", GoQuote(text), " in 'arguments' section: ", st.message()));
      continue;
    }
    defaults[key] = std::move(value);
  }
  return defaults;
}

absl::StatusOr<Substituted> SubstituteBuildArgs(absl::string_view text, const ArgMap& command_line,
                                                const ArgMap& defaults, const SourceMap& original,
                                                SourceMap& result_map, size_t budget) {
  Substituted out;
  std::vector<size_t> marks = CommentMarks(text);
  std::vector<size_t> newlines;
  for (size_t i = text.find('\n'); i != absl::string_view::npos; i = text.find('\n', i + 1)) {
    newlines.push_back(i);
  }
  size_t copied = 0;  // Apptainer's i: the end of the last substitution
  Template t;
  for (size_t from = 0; NextTemplate(text, from, t); from = t.end) {
    if (IsCommentedOut(t.begin, copied, newlines, marks)) continue;
    const std::string* value = Lookup(t.name, command_line, defaults);
    if (value == nullptr) {
      return original.ErrorAt(t.begin, absl::StrCat("build var ", t.name,
                                                    " is not defined through either --build-arg "
                                                    "(--build-arg-file) or 'arguments' section"));
    }
    std::string resolved = ResolveValue(*value, command_line, defaults, out.used);
    if (out.text.size() + (t.begin - copied) + resolved.size() > budget) {
      return original.ErrorAt(
          t.begin, absl::StrCat("build var ", t.name, " makes the definition file larger than ",
                                budget >> 20, " MiB"));
    }
    result_map.AddAnchor(out.text.size(), copied, true);
    absl::StrAppend(&out.text, text.substr(copied, t.begin - copied));
    result_map.AddAnchor(out.text.size(), t.begin, false);
    out.text.append(resolved);
    out.used.emplace(t.name, resolved);
    copied = t.end;
    out.changed = true;
  }
  if (out.text.size() + (text.size() - copied) > budget) {
    return original.ErrorAt(copied, absl::StrCat("build args make the definition file larger than ",
                                                 budget >> 20, " MiB"));
  }
  result_map.AddAnchor(out.text.size(), copied, true);
  absl::StrAppend(&out.text, text.substr(copied));
  return out;
}

}  // namespace berth::deffile::internal
