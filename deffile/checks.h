// Internal to deffile/: the checks Apptainer leaves to build time (or skips),
// made at parse time so that `berth build --dry-run` finds them with their
// line: %files args and the stages they name, and build script args.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "deffile/deffile.h"
#include "deffile/definition.h"

namespace berth::deffile::internal {

// Sets each FilesSection's from_stage, and refuses what Apptainer would
// ignore or fail on later.
absl::Status CheckStages(std::vector<Definition>& stages, absl::string_view file);

// Refuses the build args no stage used, with Apptainer's message, or warns
// under --warn-unused-build-args.
absl::Status CheckUnused(const BuildArgs& args, const std::set<std::string>& used,
                         std::vector<std::string>& warnings);

}  // namespace berth::deffile::internal
