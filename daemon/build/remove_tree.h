// Removing a build's staging tree: everything below a directory the daemon
// holds open, whatever the build left there (files of the caller's
// subordinate ids, modes without write permission, symlinks pointing
// anywhere), without following a symlink or leaving the filesystem.
//
// Privilege: runs as the daemon. Every step is relative to a directory
// descriptor opened with O_NOFOLLOW, so a path swapped by the user during
// the walk can only make the walk skip something, never reach outside.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace berth::daemon::build {

// Removes the entry `name` of directory `parent_fd` and, for a directory,
// everything below it. A missing entry is success.
absl::Status RemoveTreeAt(int parent_fd, absl::string_view name);

// Removes everything below directory `dir_fd`, keeping the directory.
absl::Status EmptyDirectory(int dir_fd);

}  // namespace berth::daemon::build
