// Thin absl::Status wrappers over the new mount API (fsopen/fsmount,
// open_tree, mount_setattr) and openat2, for the parent side of a launch.
//
// The launcher never mounts by path in the daemon's namespace: it makes
// *detached* mounts (anonymous, referenced only by a descriptor) that the
// container's child attaches in its own mount namespace. If a launch fails,
// closing the descriptors frees them; nothing is ever visible to the daemon's
// namespace or needs unmounting.
//
// Privilege: these run as the daemon (CAP_SYS_ADMIN over its mount
// namespace: real root in system mode, root of the daemon's user namespace
// in user mode).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace berth::daemon::launch {

// One fsconfig() parameter; an empty value is a flag (FSCONFIG_SET_FLAG).
struct FsOption {
  std::string key;
  std::string value;
};

// A new detached filesystem instance ("tmpfs", "devpts", ...) with the given
// options and MOUNT_ATTR_* flags. The kernel's own complaint, when it has
// one, is part of the error.
absl::StatusOr<UniqueFd> NewDetachedMount(const std::string& fstype,
                                          const std::vector<FsOption>& options,
                                          uint64_t attributes);

// A detached copy of the mount at `dirfd`/`path` ("" means `dirfd` itself):
// a bind mount not yet attached anywhere. `recursive` copies submounts too
// (needed to copy a tree with locked submounts in a user namespace).
absl::StatusOr<UniqueFd> CloneDetached(int dirfd, const std::string& path, bool recursive);

// mount_setattr() on a detached tree: adds MOUNT_ATTR_* flags, and sets the
// propagation (MS_SLAVE, MS_PRIVATE; 0 leaves it) on the mount and, with
// `recursive`, every submount. A `userns_fd` (>= 0) idmaps the mount with
// that user namespace's maps (image_idmap.h).
absl::Status SetMountAttributes(int mount_fd, uint64_t attributes, uint64_t propagation,
                                bool recursive, int userns_fd = -1);

// openat2(dirfd, path, how) with O_CLOEXEC added.
absl::StatusOr<UniqueFd> OpenAt2(int dirfd, const std::string& path, uint64_t flags,
                                 uint64_t resolve, mode_t mode = 0);

}  // namespace berth::daemon::launch
