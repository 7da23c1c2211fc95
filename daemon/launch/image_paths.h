// Container paths: cleaning what the request names, and finding where a
// path lands in the (read-only) image so the launcher can create missing
// mount points in its staging layer instead of in the image.
//
// The staging layer is a directory on the session tmpfs that the launcher
// puts *above* the image as an overlay lower layer. A mount point the image
// lacks ("/home/alice", "/scratch") is created there, at the place the image
// itself would resolve the path to: if the image has "/data -> /etc", a bind
// to "/data/x" needs "etc/x" in the staging layer, not "data/x" (an
// overlayfs directory "data" above the image's symlink would hide it).
//
// The image is immutable (a read-only squashfs the daemon mounted), so
// resolving it here in user space is stable; and whatever is computed here
// only decides where empty placeholders go on the launcher's own tmpfs. The
// mount itself is always placed at the kernel's RESOLVE_IN_ROOT resolution
// beneath the new root, by descriptor (child_rootfs.cc).
//
// Privilege: reads the image and writes the session tmpfs as the daemon.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::daemon::launch {

// "/home//alice/./x/" → "home/alice/x". Refuses relative paths, ".."
// components, NUL bytes and paths longer than PATH_MAX. "/" becomes "" when
// `allow_root`, and is refused otherwise (nothing may be mounted over the
// container's root).
absl::StatusOr<std::string> CleanContainerPath(absl::string_view path, bool allow_root = false);

// True for "proc" and anything beneath it (clean, relative form).
bool IsUnderProc(absl::string_view clean);

// Where a clean path lands inside the image.
struct ImagePath {
  std::vector<std::string> existing;  // components that exist, symlinks resolved
  std::vector<std::string> missing;   // the rest, to be created (empty: it exists)
  mode_t type = 0;                    // S_IFMT of the last existing component
};

// Resolves `clean` beneath `image_fd` the way RESOLVE_IN_ROOT would:
// absolute symlinks restart at the image root, ".." stops there.
absl::StatusOr<ImagePath> ResolveInImage(int image_fd, absl::string_view clean);

// readlinkat() of `rel` beneath `dirfd`, refusing targets of PATH_MAX or more.
absl::StatusOr<std::string> ReadLinkAt(int dirfd, const std::string& rel);

std::string JoinComponents(const std::vector<std::string>& parts, size_t count);

// Makes `clean` exist in the merged root as a directory or an empty file,
// creating what the image lacks in the staging layer. Directories mirrored
// from the image get the image's mode and owner, because overlayfs shows the
// topmost layer's attributes for a merged directory.
absl::Status StageMountPoint(int image_fd, int staging_fd, absl::string_view clean, bool directory);

// Puts a file with `content` at the place `clean` resolves to in the image,
// in the staging layer, so that it shadows the image's own file (the
// generated /etc/passwd and /etc/group).
absl::Status StageShadowFile(int image_fd, int staging_fd, absl::string_view clean,
                             absl::string_view content);

// Gives the directory `dir_fd` the mode and owner of the image's root, for
// the layer roots (the merged "/" shows the topmost layer's root).
absl::Status CopyRootAttributes(int image_fd, int dir_fd);

}  // namespace berth::daemon::launch
