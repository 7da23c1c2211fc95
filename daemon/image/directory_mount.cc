#include "daemon/image/directory_mount.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace berth::daemon::image {

absl::Status CheckReadableDirectory(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return ErrnoStatus("checking the sandbox descriptor", errno);
  // Why: O_PATH needs no permission on the directory itself; acting through
  // it would lend the daemon's rights to a directory the caller cannot read.
  if ((flags & O_PATH) != 0) {
    return absl::PermissionDeniedError(
        "the sandbox descriptor is O_PATH; hand a directory opened for reading");
  }
  if ((flags & O_ACCMODE) == O_WRONLY) {
    return absl::PermissionDeniedError("the sandbox descriptor is not open for reading");
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus("checking the sandbox descriptor", errno);
  if (!S_ISDIR(st.st_mode)) return absl::InvalidArgumentError("not a directory");
  return absl::OkStatus();
}

absl::StatusOr<ScopedMount> BindDirectory(int dir_fd, const std::string& mount_point,
                                          bool writable) {
  RETURN_IF_ERROR(CheckReadableDirectory(dir_fd));
  // No AT_RECURSIVE: mounts below the sandbox stay on the host (see header).
  UniqueFd tree(
      static_cast<int>(open_tree(dir_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH)));
  if (!tree) return ErrnoStatus("cloning the sandbox directory", errno);
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (writable ? 0 : MOUNT_ATTR_RDONLY);
  attr.propagation = MS_PRIVATE;
  if (mount_setattr(tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
    return ErrnoStatus("making the sandbox bind nosuid, nodev", errno);
  }
  RETURN_IF_ERROR(MakeMountPoint(mount_point));
  if (move_mount(tree.get(), "", AT_FDCWD, mount_point.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    const int err = errno;
    ::rmdir(mount_point.c_str());
    return ErrnoStatus("attaching the sandbox bind", err);
  }
  return ScopedMount(mount_point);
}

}  // namespace berth::daemon::image
