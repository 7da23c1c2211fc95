// Building the container's mount list (PlanMounts and its parts): where
// each detached mount goes, with its mount point made on the launcher's own
// tmpfs or in the staging layer above the image, never in the image or on
// the host. Shared by prepare_mounts.cc (system mounts, home, binds) and
// prepare_devices.cc (GPUs and CDI devices).
//
// Privilege: the daemon's (open_tree clones, fsmount of tmpfs).
#pragma once

#include <sys/mount.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/unique_fd.h"
#include "daemon/launch/launch.h"
#include "daemon/launch/prepare.h"

namespace berth::daemon::launch {

inline constexpr uint64_t kNoSuidDev = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

class MountPlanner {
 public:
  MountPlanner(int image_fd, int staging_fd, PreparedLaunch& p)
      : image_fd_(image_fd), staging_fd_(staging_fd), p_(p) {}

  // `mnt` at the container path `dest`, its mount point made if missing.
  // Below a host tree attached earlier, `dest` is resolved as the caller.
  absl::Status At(UniqueFd mnt, absl::string_view dest, bool directory, std::string what);

  // Like At() for a tree of the host's (a bind source, /tmp, /sys, /dev).
  absl::Status AtHostTree(UniqueFd mnt, absl::string_view dest, bool directory, std::string what);

  // Records that the clean container path `clean` holds a host directory
  // attached by a step of its own (Beneath): later destinations below it
  // are resolved as the caller, as with AtHostTree.
  void NoteHostTree(std::string clean) { host_trees_.push_back(std::move(clean)); }

  // Like At() for a fresh, empty tmpfs of ours: later mount points beneath
  // it are created in it (it is no one else's and not the image).
  absl::Status AtOwnTmpfs(UniqueFd mnt, absl::string_view dest, std::string what);

  absl::Status Proc();

  // `mnt` at `rel` beneath `base_fd`, a mount of ours attached by an earlier step.
  void Beneath(UniqueFd mnt, int base_fd, std::string rel, std::string what);

  // A step that only checks the device node `rel` beneath `base_fd` (one
  // the parent made in a /dev of ours; MountStep::kDeviceCheck).
  void Check(int base_fd, std::string rel, std::string what);

  int image_fd() const { return image_fd_; }

  // The step added last, to set its device checks.
  MountStep& Last() { return p_.plan.mounts.back(); }

  // Is the path `path` strictly below `dir` (both clean, or both absolute)?
  static bool IsBelow(const std::string& path, const std::string& dir);

  // Creates `rel` (and its parents) in one of our own tmpfs mounts.
  static absl::Status MakeInTmpfs(int tmpfs_fd, const std::string& rel, bool directory);

 private:
  struct OwnTmpfs {
    std::string destination;
    int fd;
  };

  absl::Status MakeMountPoint(const std::string& clean, bool directory);

  int image_fd_;
  int staging_fd_;
  PreparedLaunch& p_;
  std::vector<OwnTmpfs> own_tmpfs_;
  std::vector<std::string> host_trees_;  // clean destinations of host directories
};

// A recursive copy of a host tree, with `attributes` added everywhere.
absl::StatusOr<UniqueFd> CloneTree(int dirfd, const std::string& path, uint64_t attributes);
absl::StatusOr<UniqueFd> HostTree(const std::string& path, uint64_t attributes);
absl::StatusOr<bool> IsDirectory(int fd);

// `bind` (a caller's or the daemon's descriptor) at its destination,
// nosuid and nodev, ro and noexec where asked.
absl::Status PlanBind(MountPlanner& planner, const BindSpec& bind, const std::string& what);

// A fresh tmpfs; its root belongs to the daemon unless `owner` is given (a
// uid 0 would not even exist in user mode's namespace).
absl::StatusOr<UniqueFd> Tmpfs(const std::string& mode, const Identity* owner, uint64_t attributes);

}  // namespace berth::daemon::launch
