// A directory tree on disk -> a squashfs image: what the builder does with a
// finished root filesystem (mksquashfs's job, in-process).
//
// The walk keeps owners, modes, mtimes, xattrs (user., trusted., security.),
// hardlinks, symlinks, FIFOs, sockets and device nodes. Owners are as the
// calling process sees them: the builder squashes from inside the build's
// user namespace, so the ids stored are the container's. Paths are resolved
// beneath the root, never through a symlink and never across a mount.
//
// Two passes: a stat-only walk builds the tree and totals the bytes (so
// progress has a percentage), then each file's data is streamed once into
// the multi-threaded block processor.
#pragma once

#include <cstdint>
#include <functional>

#include "absl/status/statusor.h"
#include "squash/options.h"
#include "squash/writer.h"

namespace berth::squash {

// Called with bytes of file data read so far and the total, at most every
// few MiB and once at the end.
using Progress = std::function<void(int64_t done, int64_t total)>;

struct DirLimits {
  int64_t max_entries = 10'000'000;
};

absl::StatusOr<Stats> SquashDirectory(int root_fd, const Target& target, const Options& options,
                                      const Progress& progress = nullptr,
                                      const DirLimits& limits = {});

}  // namespace berth::squash
