// Paths inside a build's root filesystem, resolved as if the root were "/":
// `..` stops at the root and absolute symlinks point back into it
// (openat2's RESOLVE_IN_ROOT), so whatever the image holds, nothing the
// worker writes lands outside the root. The worker runs with the caller's
// rights only; this keeps a hostile image from steering the caller's own
// writes onto the caller's other files.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace berth::build_worker {

// Opens `path` (relative to the root, or absolute meaning the same) with
// `flags`, resolved within `root_fd`.
absl::StatusOr<UniqueFd> OpenInRoot(int root_fd, const std::string& path, int flags,
                                    mode_t mode = 0);

// `mkdir -p` of `path` within the root; returns the directory, opened.
absl::StatusOr<UniqueFd> MakeDirsInRoot(int root_fd, const std::string& path);

// The parent of `path` and its last component ("" for the root itself).
std::pair<std::string, std::string> SplitLast(const std::string& path);

}  // namespace berth::build_worker
