// deffile: Apptainer/Singularity definition files, parsed.
//
// A pure library (bytes in, Definitions out: no I/O, no logging, no global
// state) that both binaries link: the client for `berth build --dry-run` and
// its early checks, the daemon's builder for the real thing. It follows
// Apptainer's parser rule by rule, quirks included (the shared docs'
// build.md §1), and departs from it only to fail where Apptainer would crash,
// loop, go silent or fail later without saying where: every error is one
// line, "FILE:LINE: message", with Apptainer's wording inside. The
// deliberate differences are listed in docs/architecture.md ("deffile/").
//
// Use:
//   deffile::BuildArgs args;                        // --build-arg-file, then --build-arg
//   RETURN_IF_ERROR(deffile::AddBuildArg(args, "VERSION=2"));
//   ASSIGN_OR_RETURN(deffile::ParsedFile file,
//                    deffile::ParseDefinitionFile(bytes, "app.def", args));
//   for (const deffile::Definition& stage : file.stages) ...   // build in order
//   file.full_raw                                   // -> the SIF's Def.FILE
// plan.h says what runs where and in which order (build.md §3), json.h
// renders the stages as Apptainer's JSON (build.md §2).
//
// Hostile input is bounded: the limits below are checked before any other
// work, substitution is single-pass, and nothing is quadratic in the input.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "deffile/definition.h"

namespace berth::deffile {

// Apptainer reads at most 64 KiB per section (bufio.Scanner's default), so
// real files are far below these.
inline constexpr size_t kMaxFileBytes = 8 << 20;  // also after build args
inline constexpr size_t kMaxLineBytes = 1 << 20;
inline constexpr size_t kMaxStages = 128;
inline constexpr size_t kMaxSections = 10000;  // section lines in the whole file

// Values for `{{ NAME }}`: --build-arg-file lines first, then each
// --build-arg (a later one wins, as in Apptainer).
struct BuildArgs {
  std::map<std::string, std::string, std::less<>> values;
  // --warn-unused-build-args: an unused --build-arg warns instead of failing.
  bool warn_unused = false;
};

// Adds one --build-arg "K=V". Refuses text without '=' or with an empty key,
// with Apptainer's message.
absl::Status AddBuildArg(BuildArgs& args, absl::string_view arg);

// Adds the K=V lines of a --build-arg-file's contents; other lines are
// skipped with Apptainer's warning appended to `warnings`.
void AddBuildArgFile(BuildArgs& args, absl::string_view contents,
                     std::vector<std::string>& warnings);

struct ParsedFile {
  // The stages in file order; only the last one becomes the image.
  std::vector<Definition> stages;
  // The whole file with build args substituted: the SIF's Def.FILE and the
  // image's /.singularity.d/Singularity.
  std::string full_raw;
  // Build args substituted somewhere, sorted; defaults included.
  std::vector<std::string> used_args;
  // For the user, one line each, without a "WARNING: " prefix: skipped
  // %arguments lines, unused build args under --warn-unused-build-args.
  std::vector<std::string> warnings;

  // The first stage named `name` (its `Stage:` header), or nullptr.
  const Definition* FindStage(absl::string_view name) const;
};

// Parses a whole definition file. `file_name` is only used in messages.
absl::StatusOr<ParsedFile> ParseDefinitionFile(absl::string_view bytes, absl::string_view file_name,
                                               const BuildArgs& args);

// How Apptainer runs a build script section (pre, setup, post, test):
// {"/bin/sh", "-ex", args..., script_path}, with the args cut at '#'; after
// "-c" the rest of the args and the script path become one argument. A bare
// "-c" is refused: "bad post section '-c' parameter: missing arguments".
absl::StatusOr<std::vector<std::string>> SectionCommand(absl::string_view section,
                                                        const Script& script,
                                                        absl::string_view script_path);

}  // namespace berth::deffile
