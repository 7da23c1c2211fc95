// One image from a parsed definition file, step by step in Apptainer's order
// (build.md §3): the base unpacked into the build's staging directory,
// %setup on the host, %files, %post in a fakeroot container, the metadata,
// %test, and the root squashed into the caller's SIF.
//
// Every step that touches the root runs as the build's fakeroot user: file
// work in berth-build-worker (worker_runner.h), scripts in host processes
// or containers of that user (sections.h). The daemon itself only creates
// and removes the staging directory and writes the SIF's header and
// descriptors through the descriptor the client created.
//
// Each stage starts from an empty root (scratch) or from a SIF base: a
// localimage, or a docker/OCI/oras base the client pulled through the node
// cache as the caller (client/build/build_base.h), so that every base takes
// the localimage path here. `Fingerprints:` is checked first
// (fingerprints.h). Every stage is built in full, in order, in a root of
// its own under the staging directory; `%files from STAGE` copies out of
// an earlier stage's root, and only the last stage becomes the image.
// With the stage cache on (stage_cache.h), a stage's root after %post comes
// from the cache when its key matches, and is kept there when not.
// Other bootstraps, %pre and SCIF apps are refused with a one-line error
// that says so.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/build/build_context.h"
#include "deffile/deffile.h"

namespace berth::daemon::build {

struct BuildInputs {
  const deffile::ParsedFile* file = nullptr;
  int output_fd = -1;  // the SIF temp file, opened by the client as the caller
  // Per stage, its base SIF, opened by the client as the caller; -1: scratch.
  std::vector<int> source_fds;
};

// Builds the SIF; returns its size.
absl::StatusOr<int64_t> BuildSif(BuildContext& ctx, const BuildInputs& in);

// --sandbox: builds in `in.output_fd`, an empty directory the client made
// as the caller (`path` is its name there, for %setup's $APPTAINER_ROOTFS).
// On failure the directory is emptied by the fakeroot user.
absl::Status BuildSandbox(BuildContext& ctx, const BuildInputs& in, const std::string& path);

}  // namespace berth::daemon::build
