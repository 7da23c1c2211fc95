// The driver libraries as one detached mount tree, built once per
// resolution of the library list: a small tmpfs holding a read-only,
// nosuid, nodev bind of each library under its name, referenced only by a
// descriptor (never attached in any namespace). A launch then clones the
// whole tree with one open_tree(AT_RECURSIVE) and attaches it at
// /.singularity.d/libs, instead of cloning, staging and attaching ~60 binds
// one by one (each several system calls on both sides of the clone).
//
// Building it needs a kernel that mounts onto, and clones, detached mounts
// (Linux 6.15); on older ones Build fails and the launcher binds each file.
//
// Privilege: the daemon's (CAP_SYS_ADMIN over its mount namespace).
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "daemon/gpu/driver_files.h"

namespace berth::daemon::gpu {

// The detached tree of `libraries` (destinations in kLibsDir).
absl::StatusOr<UniqueFd> BuildLibsTree(const std::vector<DriverFile>& libraries);

}  // namespace berth::daemon::gpu
