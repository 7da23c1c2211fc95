// The bodies Apptainer parses further: %files lines and %labels.
#include <string>

#include "absl/strings/string_view.h"
#include "deffile/stage_parser.h"

namespace berth::deffile::internal {
namespace {

// [^\s"'] in the regexp.
bool Plain(char c) {
  return !IsReSpace(c) && c != '"' && c != '\'';
}

// `{{\s*\w+\s*}` at q (only the first closing brace): its end, or npos.
size_t TemplateEnd(absl::string_view s, size_t q) {
  if (q + 1 >= s.size() || s[q] != '{' || s[q + 1] != '{') return absl::string_view::npos;
  size_t i = q + 2;
  while (i < s.size() && IsReSpace(s[i])) ++i;
  size_t word = i;
  while (i < s.size() && IsReWord(s[i])) ++i;
  if (i == word) return absl::string_view::npos;
  while (i < s.size() && IsReSpace(s[i])) ++i;
  return i < s.size() && s[i] == '}' ? i + 1 : absl::string_view::npos;
}

// The first alternative, `([^\s"']*{{\s*\w+\s*}}*[^\s{}"']*)+`, at p. Its
// greedy prefix makes each repetition end at the last template of the run
// of plain characters, so one right-to-left look per run finds it.
size_t TemplatedTokenEnd(absl::string_view s, size_t p) {
  size_t pos = p;
  bool matched = false;
  for (;;) {
    size_t run_end = pos;
    while (run_end < s.size() && Plain(s[run_end])) ++run_end;
    // The last q in [pos, run_end - 2] where a template starts.
    size_t end = absl::string_view::npos;
    for (size_t k = run_end; k >= pos + 2 && end == absl::string_view::npos; --k) {
      end = TemplateEnd(s, k - 2);
    }
    if (end == absl::string_view::npos) break;
    while (end < s.size() && s[end] == '}') ++end;
    while (end < s.size() && Plain(s[end]) && s[end] != '{' && s[end] != '}') ++end;
    pos = end;
    matched = true;
  }
  return matched ? pos : absl::string_view::npos;
}

// The whole regexp at p (alternatives in order), or npos when none matches.
size_t TokenEnd(absl::string_view s, size_t p) {
  if (size_t end = TemplatedTokenEnd(s, p); end != absl::string_view::npos) return end;
  if (Plain(s[p])) {
    size_t end = p;
    while (end < s.size() && Plain(s[end])) ++end;
    return end;
  }
  if (s[p] == '"') {
    size_t close = s.find('"', p + 1);
    return close == absl::string_view::npos ? close : close + 1;
  }
  if (s[p] == '\'') {
    size_t close = s.find('\'', p + 1);  // the closing quote is not part of it
    return close == absl::string_view::npos ? s.size() : close;
  }
  return absl::string_view::npos;
}

}  // namespace

std::vector<absl::string_view> FilesLineTokens(absl::string_view line) {
  std::vector<absl::string_view> tokens;
  for (size_t p = 0; p < line.size() && tokens.size() < 2;) {
    size_t end = TokenEnd(line, p);
    if (end == absl::string_view::npos) {
      ++p;
      continue;
    }
    tokens.push_back(line.substr(p, end - p));
    p = end;
  }
  return tokens;
}

void ParseLabels(absl::string_view body, std::map<std::string, std::string>& labels) {
  for (const Line& line : SplitLines(body)) {
    absl::string_view text = TrimSpace(line.text);
    if (text.empty() || text.front() == '#') continue;
    size_t space = text.find(' ');
    absl::string_view key = text.substr(0, space);
    absl::string_view value = space == absl::string_view::npos ? "" : text.substr(space + 1);
    labels[std::string(TrimSpace(key))] = std::string(TrimSpace(value));
  }
}

}  // namespace berth::deffile::internal
