#include "deffile/checks.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "deffile/deffile.h"
#include "deffile/go_text.h"

namespace berth::deffile {
namespace internal {
namespace {

absl::Status ErrorAt(absl::string_view file, int line, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(file, ":", line, ": ", message));
}

// Apptainer's build: args cut at '#' with exactly two words copy from the
// stage the second names; none copy from the host; any other count is
// silently skipped, which berth refuses.
absl::Status ResolveFilesSource(std::vector<Definition>& stages, size_t index, FilesSection& files,
                                absl::string_view file) {
  absl::string_view args = files.args;
  std::vector<absl::string_view> words = Fields(args.substr(0, args.find('#')));
  if (words.empty()) return absl::OkStatus();
  if (words.size() != 2) {
    return ErrorAt(file, files.line,
                   absl::StrCat("%files ", Printable(files.args),
                                ": expected no args (copy from the host) or \"from STAGE\""));
  }
  absl::string_view name = words[1];
  for (size_t i = 0; i < stages.size(); ++i) {
    if (stages[i].StageName() != name) continue;
    if (i >= index) {
      return ErrorAt(file, files.line,
                     absl::StrCat("stage ", Printable(name), " is built ",
                                  i == index ? "by this stage" : "after this one",
                                  ": %files from can only copy from an earlier stage"));
    }
    files.from_stage = std::string(name);
    return absl::OkStatus();
  }
  return ErrorAt(file, files.line, absl::StrCat("stage ", Printable(name), " was not found"));
}

}  // namespace

absl::Status CheckStages(std::vector<Definition>& stages, absl::string_view file) {
  for (size_t i = 0; i < stages.size(); ++i) {
    Definition& def = stages[i];
    for (FilesSection& files : def.files) {
      RETURN_IF_ERROR(ResolveFilesSource(stages, i, files, file));
    }
    for (absl::string_view name : {"pre", "setup", "post", "test"}) {
      const Script* script = def.FindScript(name);
      if (!script->present()) continue;
      if (absl::Status st = SectionCommand(name, *script, "/script").status(); !st.ok()) {
        return ErrorAt(
            file, script->line,
            absl::StrCat("while processing section %", name, " arguments: ", st.message()));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace internal

absl::StatusOr<std::vector<std::string>> SectionCommand(absl::string_view section,
                                                        const Script& script,
                                                        absl::string_view script_path) {
  std::vector<std::string> command = {"/bin/sh", "-ex"};
  std::vector<absl::string_view> params =
      internal::Fields(absl::string_view(script.args).substr(0, script.args.find('#')));
  for (size_t i = 0; i < params.size(); ++i) {
    if (params[i] != "-c") {
      command.emplace_back(params[i]);
      continue;
    }
    if (i + 1 == params.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad ", section, " section '-c' parameter: missing arguments"));
    }
    std::vector<absl::string_view> rest(params.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                                        params.end());
    command.emplace_back("-c");
    command.push_back(absl::StrCat(absl::StrJoin(rest, " "), " ", script_path));
    return command;
  }
  command.emplace_back(script_path);
  return command;
}

}  // namespace berth::deffile
