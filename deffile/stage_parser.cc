#include "deffile/stage_parser.h"

#include <algorithm>
#include <span>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"

namespace berth::deffile::internal {
namespace {

constexpr absl::string_view kScriptSections[] = {
    "help", "setup",     "labels", "environment", "pre",
    "post", "runscript", "test",   "startscript", "arguments"};
constexpr absl::string_view kAppSections[] = {"appinstall", "applabels", "appfiles", "appenv",
                                              "apptest",    "apphelp",   "apprun",   "appstart"};

template <size_t N>
bool In(const absl::string_view (&names)[N], absl::string_view name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

bool IsSectionLine(absl::string_view line) {
  absl::string_view word = FirstWord(line);
  return !word.empty() && word.front() == '%';
}

}  // namespace

bool IsAppSection(absl::string_view name) {
  return In(kAppSections, name);
}

bool ValidAppName(absl::string_view name) {
  if (name.empty() || name == "." || name == "..") return false;
  return std::none_of(name.begin(), name.end(), [](char c) {
    return c == '/' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
}

namespace {

// Collects sections into a Definition as deffile.go's parseTokenSection and
// populateDefinition do.
class StageBuilder {
 public:
  explicit StageBuilder(const SourceMap& source) : source_(source) {}

  Definition& def() { return def_; }

  // `line` is the "%name args" line, `body` its text, `body_lines` the same
  // lines with their offsets (for %files).
  absl::Status AddSection(absl::string_view line, size_t offset, const std::string& body,
                          std::span<const Line> body_lines) {
    if (line.empty() || line.front() != '%') {
      // Indented: Apptainer's name for it is "" (or starts with a tab).
      Invalid(absl::StrCat(FirstWord(line), " (indented)"), offset);
      return absl::OkStatus();
    }
    absl::string_view stripped = line;
    while (!stripped.empty() && stripped.front() == '%') stripped.remove_prefix(1);
    size_t space = stripped.find(' ');
    absl::string_view name = stripped.substr(0, space);
    std::string key = AsciiLower(name);
    absl::string_view args = space == absl::string_view::npos ? "" : stripped.substr(space + 1);
    bool has_args = space != absl::string_view::npos;
    if (key == "files") return AddFiles(args, offset, body_lines);
    if (In(kAppSections, key)) return AddApp(stripped, name, key, offset, body);
    if (!In(kScriptSections, key)) {
      Invalid(key, offset);
      return absl::OkStatus();
    }
    Script& script = key == "labels" ? labels_ : *def_.MutableScript(key);
    if (!script.present()) script.line = source_.LineOf(offset);
    // A later occurrence replaces the args only when it has some.
    if (has_args) script.args = std::string(args);
    script.script += body;
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<Definition>> Finish() {
    if (!invalid_.empty()) {
      std::vector<std::string> names;
      for (const auto& [name, offset] : invalid_) names.push_back(Printable(name));
      return source_.ErrorAt(invalid_.front().second, absl::StrCat("invalid section(s) specified: ",
                                                                   absl::StrJoin(names, ", ")));
    }
    ParseLabels(labels_.script, def_.labels);
    if (IsEmpty()) return std::nullopt;
    return std::move(def_);
  }

 private:
  absl::Status AddFiles(absl::string_view args, size_t offset, std::span<const Line> lines) {
    auto [it, added] = files_index_.try_emplace(std::string(args), def_.files.size());
    if (added) def_.files.push_back({std::string(args), "", {}, source_.LineOf(offset)});
    FilesSection& section = def_.files[it->second];
    for (const Line& line : lines) {
      absl::string_view text = TrimSpace(line.text);
      if (text.empty() || text.front() == '#') continue;
      std::vector<absl::string_view> tokens = FilesLineTokens(text);
      auto clean = [](absl::string_view t) {
        t = TrimSpace(t);
        while (!t.empty() && t.front() == '"') t.remove_prefix(1);
        while (!t.empty() && t.back() == '"') t.remove_suffix(1);
        return std::string(t);
      };
      std::string source = tokens.empty() ? "" : clean(tokens[0]);
      if (source.empty()) {
        // Apptainer crashes on a lone '"' (no token) and copies "" otherwise.
        return source_.ErrorAt(line.offset,
                               absl::StrCat("%files: no source path in ", GoQuote(text)));
      }
      section.files.push_back({std::move(source), tokens.size() < 2 ? "" : clean(tokens[1]),
                               source_.LineOf(line.offset)});
    }
    return absl::OkStatus();
  }

  absl::Status AddApp(absl::string_view stripped, absl::string_view name, const std::string& key,
                      size_t offset, const std::string& body) {
    std::vector<absl::string_view> parts = absl::StrSplit(stripped, absl::MaxSplits(' ', 2));
    if (parts.size() < 2 || parts[1].empty()) {
      return source_.ErrorAt(offset, absl::StrCat("app section ", Printable(parts[0]),
                                                  ": could not be split into section name "
                                                  "and app name"));
    }
    if (name != key) {
      // Apptainer files it under "APPRUN foo", which is no app section.
      Invalid(absl::StrCat(name, " ", parts[1]), offset);
      return absl::OkStatus();
    }
    std::string app_name(parts[1]);
    if (!ValidAppName(app_name)) {
      return source_.ErrorAt(offset,
                             absl::StrCat("app section ", key, ": app name ", GoQuote(app_name),
                                          " is not a directory name (no '/', "
                                          "'.', '..' or control characters)"));
    }
    auto [it, added] = app_index_.try_emplace(app_name, def_.apps.size());
    if (added) def_.apps.push_back({app_name, {}, source_.LineOf(offset)});
    def_.apps[it->second].sections[key] += body;
    return absl::OkStatus();
  }

  void Invalid(std::string name, size_t offset) {
    if (invalid_seen_.insert(name).second) invalid_.emplace_back(std::move(name), offset);
  }

  // Apptainer's isEmpty: nothing a build could use.
  bool IsEmpty() const {
    for (absl::string_view name : kScriptSections) {
      if (name == "labels") continue;
      const Script* s = def_.FindScript(name);
      if (!s->args.empty() || !s->script.empty()) return false;
    }
    return def_.header.empty() && def_.labels.empty() && def_.files.empty() && def_.apps.empty();
  }

  const SourceMap& source_;
  Definition def_;
  Script labels_;  // parsed into def_.labels at the end
  absl::flat_hash_map<std::string, size_t> files_index_, app_index_;
  std::vector<std::pair<std::string, size_t>> invalid_;
  absl::flat_hash_set<std::string> invalid_seen_;
};

std::string JoinLines(std::span<const Line> lines) {
  std::string out;
  for (const Line& l : lines) absl::StrAppend(&out, l.text, "\n");
  return out;
}

// A chunk whose very first line opens a section: Apptainer trims the whole
// section (so its body loses the trailing newline) and needs a newline left
// after the section line.
absl::Status AddTrimmedFirstSection(StageBuilder& builder, const SourceMap& source,
                                    std::span<const Line> lines) {
  std::string whole = JoinLines(lines);
  absl::string_view trimmed = TrimSpace(whole);
  size_t nl = trimmed.find('\n');
  if (nl == absl::string_view::npos) {
    return source.ErrorAt(lines.front().offset,
                          absl::StrCat("section ", Printable(trimmed),
                                       ": could not be split into section name and body"));
  }
  return builder.AddSection(trimmed.substr(0, nl), lines.front().offset,
                            std::string(trimmed.substr(nl + 1)), lines.subspan(1));
}

}  // namespace

absl::StatusOr<std::optional<Definition>> ParseStage(absl::string_view text,
                                                     const SourceMap& source) {
  std::vector<Line> lines = SplitLines(text);
  std::vector<size_t> starts;  // indices of section lines
  for (size_t i = 0; i < lines.size(); ++i) {
    if (IsSectionLine(lines[i].text)) starts.push_back(i);
  }
  starts.push_back(lines.size());
  StageBuilder builder(source);
  std::span<const Line> all(lines);
  RETURN_IF_ERROR(ParseHeader(all.first(starts.front()), source, builder.def().header));
  for (size_t k = 0; k + 1 < starts.size(); ++k) {
    std::span<const Line> section = all.subspan(starts[k], starts[k + 1] - starts[k]);
    if (starts[k] == 0) {
      RETURN_IF_ERROR(AddTrimmedFirstSection(builder, source, section));
      continue;
    }
    RETURN_IF_ERROR(builder.AddSection(section.front().text, section.front().offset,
                                       JoinLines(section.subspan(1)), section.subspan(1)));
  }
  return builder.Finish();
}

}  // namespace berth::deffile::internal
