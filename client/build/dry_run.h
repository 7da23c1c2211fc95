// `berth build --dry-run`: the definition file checked as the builder will
// check it, and the build plan printed (stages, bootstraps, build args, what
// runs on the host and what in the container, what each %files copies), or,
// with --json, the parsed stages in Apptainer's JSON shape. No side effects:
// nothing is fetched, created or contacted.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "client/build/build_flags.h"
#include "deffile/deffile.h"

namespace berth::client {

// The parsed file, with --build-arg-file and --build-arg applied. Warnings
// are printed to stderr as they are found.
absl::StatusOr<deffile::ParsedFile> ParseBuildSpec(const BuildFlags& flags,
                                                   const std::string& spec);

// The human-readable plan. `image` is the output path ("" when not given).
std::string RenderPlan(const deffile::ParsedFile& file, const std::string& spec_name,
                       const std::string& image, const BuildFlags& flags,
                       const SquashOptions& squash);

// Parses, checks the bootstraps (without --json) and prints to stdout.
absl::Status RunDryRun(const BuildFlags& flags, const SquashOptions& squash,
                       const std::string& image, const std::string& spec);

}  // namespace berth::client
