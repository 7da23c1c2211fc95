// The worker's jobs on files: %files lines copied into the root (from the
// host, read with the caller's rights, or from an earlier stage's root) and
// the files the builder generates (/.singularity.d, mount points).
#pragma once

#include "absl/status/status.h"
#include "berth/v1/build_worker.pb.h"

namespace berth::build_worker {

// Each line as Apptainer's `cp -fLr SRC... DST`: sources globbed (relative
// to the working directory, the caller's), symlinks in them followed, the
// destination's parents created; the destination resolved inside the root.
absl::Status CopyFiles(int root_fd, const v1::CopyFiles& job, v1::WorkerResult& result);

absl::Status WriteFiles(int root_fd, const v1::WriteFiles& job);

}  // namespace berth::build_worker
