// The worker's hash of a stage's %files and %appfiles host sources, for the
// stage cache's key (daemon/build/stage_cache.h). Runs as the build's
// fakeroot user, so it reads exactly what the caller may read, as the copy
// that follows does; it never writes.
#pragma once

#include "absl/status/status.h"
#include "berth/v1/build_worker.pb.h"

namespace berth::build_worker {

// SHA-256 (hex, in `result.digest`) over every line's source and
// destination and each entry its source resolves to as CopyFiles would copy
// it (globbed from the working directory, symlinks followed): the entry's
// relative path, type, permission bits and content.
absl::Status HashFiles(const v1::HashFiles& job, v1::WorkerResult& result);

}  // namespace berth::build_worker
