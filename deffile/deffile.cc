#include "deffile/deffile.h"

#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "deffile/build_args.h"
#include "deffile/checks.h"
#include "deffile/go_text.h"
#include "deffile/source_map.h"
#include "deffile/stage_parser.h"
#include "deffile/stages.h"

namespace berth::deffile {
namespace {

using internal::Chunk;
using internal::SourceMap;

// A chunk that parsed into a stage, with what locates its errors.
struct Parsed {
  const Chunk* chunk;
  std::unique_ptr<SourceMap> source;  // stable address: stages refer to it
  Definition def;
};

// First pass, as parser.All: every chunk, dropping those that hold nothing.
absl::StatusOr<std::vector<Parsed>> ParseChunks(const std::vector<Chunk>& chunks,
                                                absl::string_view file) {
  std::vector<Parsed> stages;
  for (const Chunk& chunk : chunks) {
    auto source = std::make_unique<SourceMap>(file, chunk.text, chunk.first_line);
    ASSIGN_OR_RETURN(std::optional<Definition> def, internal::ParseStage(chunk.text, *source));
    if (!def) continue;
    def->first_line = chunk.first_line;
    stages.push_back({&chunk, std::move(source), *std::move(def)});
  }
  if (stages.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": no stages found in definition file"));
  }
  if (stages.size() > 1) {
    for (const Parsed& p : stages) {
      if (p.def.header.empty()) {
        return p.source->ErrorAtLine(p.chunk->first_line,
                                     "multiple stages detected, all must have headers");
      }
    }
  }
  return stages;
}

// Second pass, as MakeAllDefs: each stage's text with its own %arguments
// defaults and the command line's values substituted, parsed again.
absl::Status ApplyBuildArgs(Parsed& stage, const BuildArgs& args, size_t& budget,
                            std::set<std::string>& used, std::vector<std::string>& warnings) {
  internal::ArgMap defaults = internal::ReadDefaults(stage.def.arguments.script, warnings);
  absl::string_view text = stage.chunk->text;
  auto result_map =
      std::make_unique<SourceMap>(stage.source->file(), text, stage.chunk->first_line);
  ASSIGN_OR_RETURN(internal::Substituted sub,
                   internal::SubstituteBuildArgs(text, args.values, defaults, *stage.source,
                                                 *result_map, budget));
  budget -= sub.text.size();
  for (const auto& [name, value] : sub.used) used.insert(name);
  if (sub.changed) {
    ASSIGN_OR_RETURN(std::optional<Definition> def, internal::ParseStage(sub.text, *result_map));
    if (!def) {
      return result_map->ErrorAtLine(stage.chunk->first_line,
                                     "empty definition file after build args");
    }
    def->first_line = stage.chunk->first_line;
    stage.def = *std::move(def);
    stage.source = std::move(result_map);
  }
  stage.def.raw = std::move(sub.text);
  stage.def.build_args = std::move(sub.used);
  return absl::OkStatus();
}

}  // namespace

namespace internal {
absl::Status CheckUnused(const BuildArgs& args, const std::set<std::string>& used,
                         std::vector<std::string>& warnings) {
  std::vector<std::string> unused;
  for (const auto& [name, value] : args.values) {
    if (!used.count(name)) unused.push_back(internal::Printable(name));
  }
  if (unused.empty()) return absl::OkStatus();
  if (args.warn_unused) {
    warnings.push_back(absl::StrCat("Unused build args: ", absl::StrJoin(unused, " ")));
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unused build args: ", absl::StrJoin(unused, " "),
                   ". Use option --warn-unused-build-args to show a warning instead of a fatal "
                   "message"));
}
}  // namespace internal

absl::Status AddBuildArg(BuildArgs& args, absl::string_view arg) {
  std::string key, value;
  RETURN_IF_ERROR_CTX(internal::SplitKeyValue(arg, key, value), "--build-arg");
  args.values[std::move(key)] = std::move(value);
  return absl::OkStatus();
}

void AddBuildArgFile(BuildArgs& args, absl::string_view contents,
                     std::vector<std::string>& warnings) {
  for (const internal::Line& line : internal::SplitLines(contents)) {
    std::string key, value;
    // Apptainer neither trims these lines nor skips blank or '#' ones.
    if (absl::Status st = internal::SplitKeyValue(line.text, key, value); !st.ok()) {
      warnings.push_back(absl::StrCat("Skipping ", internal::GoQuote(line.text),
                                      " in build arg file: ", st.message()));
      continue;
    }
    args.values[std::move(key)] = std::move(value);
  }
}

const Definition* ParsedFile::FindStage(absl::string_view name) const {
  for (const Definition& d : stages) {
    if (d.StageName() == name) return &d;
  }
  return nullptr;
}

absl::StatusOr<ParsedFile> ParseDefinitionFile(absl::string_view bytes, absl::string_view file_name,
                                               const BuildArgs& args) {
  // Every message starts with the name: keep it to one line too.
  const std::string name = internal::Printable(file_name);
  RETURN_IF_ERROR(internal::CheckLimits(bytes, name));
  std::vector<Chunk> chunks = internal::SplitStages(bytes);
  ASSIGN_OR_RETURN(std::vector<Parsed> parsed, ParseChunks(chunks, name));
  ParsedFile out;
  size_t budget = kMaxFileBytes;
  std::set<std::string> used;
  for (Parsed& stage : parsed) {
    RETURN_IF_ERROR(ApplyBuildArgs(stage, args, budget, used, out.warnings));
  }
  RETURN_IF_ERROR(internal::CheckUnused(args, used, out.warnings));
  // Def.FILE keeps every chunk, the dropped ones (comments only) verbatim.
  auto next = parsed.begin();
  for (const Chunk& chunk : chunks) {
    bool is_stage = next != parsed.end() && next->chunk == &chunk;
    absl::StrAppend(&out.full_raw, is_stage ? absl::string_view((next++)->def.raw) : chunk.text);
  }
  for (Parsed& p : parsed) out.stages.push_back(std::move(p.def));
  out.used_args.assign(used.begin(), used.end());
  RETURN_IF_ERROR(internal::CheckStages(out.stages, name));
  return out;
}

}  // namespace berth::deffile
