// A sandbox directory as a container's root filesystem: a bind of exactly
// the directory the caller opened, never of a path resolved again by root.
//
// The descriptor must be a directory opened for reading (an O_PATH one
// proves only that its opener could walk to it, not read it: review finding
// 2). The bind is a non-recursive clone of that descriptor's mount
// (open_tree without AT_RECURSIVE), so mounts below the directory (a
// --bind of the host's /etc made inside it, an automount) are not carried
// into the container; it is read-only (unless --writable), nosuid and nodev, so a setuid binary
// or device node a user placed in their sandbox gives nothing.
//
// Privilege: root in system mode (open_tree, move_mount); the owner of the
// mount namespace in user mode.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "daemon/image/scoped_mount.h"

namespace berth::daemon::image {

// Checks that `fd` is a directory open for reading (not O_PATH).
absl::Status CheckReadableDirectory(int fd);

// Creates `mount_point` and binds the directory `dir_fd` there
// (non-recursive, nosuid, nodev, private; read-only unless `writable`:
// --writable, where the container writes as the caller, whose rights the
// kernel checks on every file). Nothing is left behind on error.
absl::StatusOr<ScopedMount> BindDirectory(int dir_fd, const std::string& mount_point,
                                          bool writable = false);

}  // namespace berth::daemon::image
