// The planner and the small builders shared by the mount plan's parts.
// Privilege: the daemon's (see mount_planner.h).
#include "daemon/launch/mount_planner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/launch/image_paths.h"
#include "daemon/launch/mount_api.h"

namespace berth::daemon::launch {

absl::Status MountPlanner::At(UniqueFd mnt, absl::string_view dest, bool directory,
                              std::string what) {
  ASSIGN_OR_RETURN(std::string clean, CleanContainerPath(dest));
  RETURN_IF_ERROR_CTX(MakeMountPoint(clean, directory), what);
  bool below_host = std::any_of(host_trees_.begin(), host_trees_.end(),
                                [&](const std::string& tree) { return IsBelow(clean, tree); });
  MountStep step{MountStep::kAttach, mnt.get(), -1, clean, std::move(what), {}};
  step.resolve_as_caller = below_host;
  p_.plan.mounts.push_back(std::move(step));
  p_.owned.push_back(std::move(mnt));
  return absl::OkStatus();
}

absl::Status MountPlanner::AtHostTree(UniqueFd mnt, absl::string_view dest, bool directory,
                                      std::string what) {
  RETURN_IF_ERROR(At(std::move(mnt), dest, directory, std::move(what)));
  if (directory) host_trees_.push_back(p_.plan.mounts.back().destination);
  return absl::OkStatus();
}

absl::Status MountPlanner::AtOwnTmpfs(UniqueFd mnt, absl::string_view dest, std::string what) {
  int fd = mnt.get();
  RETURN_IF_ERROR(At(std::move(mnt), dest, true, std::move(what)));
  own_tmpfs_.push_back({p_.plan.mounts.back().destination, fd});
  return absl::OkStatus();
}

absl::Status MountPlanner::Proc() {
  RETURN_IF_ERROR_CTX(MakeMountPoint("proc", true), "mounting /proc");
  p_.plan.mounts.push_back({MountStep::kProcfs, -1, -1, "proc", "mounting /proc", {}});
  return absl::OkStatus();
}

void MountPlanner::Beneath(UniqueFd mnt, int base_fd, std::string rel, std::string what) {
  p_.plan.mounts.push_back(
      {MountStep::kAttach, mnt.get(), base_fd, std::move(rel), std::move(what), {}});
  p_.owned.push_back(std::move(mnt));
}

void MountPlanner::Check(int base_fd, std::string rel, std::string what) {
  p_.plan.mounts.push_back(
      {MountStep::kDeviceCheck, -1, base_fd, std::move(rel), std::move(what), {}});
}

bool MountPlanner::IsBelow(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() && absl::StartsWith(path, dir) && path[dir.size()] == '/';
}

// In the deepest of our fresh tmpfs mounts that will cover `clean`, or in
// the staging layer above the image.
absl::Status MountPlanner::MakeMountPoint(const std::string& clean, bool directory) {
  for (auto it = own_tmpfs_.rbegin(); it != own_tmpfs_.rend(); ++it) {
    if (IsBelow(clean, it->destination)) {
      return MakeInTmpfs(it->fd, clean.substr(it->destination.size() + 1), directory);
    }
  }
  return StageMountPoint(image_fd_, staging_fd_, clean, directory);
}

absl::Status MountPlanner::MakeInTmpfs(int tmpfs_fd, const std::string& rel, bool directory) {
  std::vector<std::string> parts = absl::StrSplit(rel, '/');
  std::string path;
  for (size_t i = 0; i < parts.size(); ++i) {
    path += (i ? "/" : "") + parts[i];
    if (i + 1 == parts.size() && !directory) {
      UniqueFd file(
          ::openat(tmpfs_fd, path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
      if (!file) return ErrnoStatus(absl::StrCat("creating ", path), errno);
    } else if (::mkdirat(tmpfs_fd, path.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus(absl::StrCat("creating ", path), errno);
    }
  }
  return absl::OkStatus();
}

// A recursive copy of a host tree, with `attributes` added everywhere.
absl::StatusOr<UniqueFd> CloneTree(int dirfd, const std::string& path, uint64_t attributes) {
  ASSIGN_OR_RETURN(UniqueFd mnt, CloneDetached(dirfd, path, /*recursive=*/true));
  RETURN_IF_ERROR(SetMountAttributes(mnt.get(), attributes, MS_SLAVE, /*recursive=*/true));
  return mnt;
}

absl::StatusOr<UniqueFd> HostTree(const std::string& path, uint64_t attributes) {
  auto mnt = CloneTree(AT_FDCWD, path, attributes);
  if (!mnt.ok()) return Annotate(mnt.status(), absl::StrCat("host ", path));
  return mnt;
}

absl::StatusOr<bool> IsDirectory(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus("fstat", errno);
  return S_ISDIR(st.st_mode);
}

absl::Status PlanBind(MountPlanner& planner, const BindSpec& bind, const std::string& what) {
  if (!bind.source.valid()) return absl::InvalidArgumentError(absl::StrCat(what, ": no source"));
  ASSIGN_OR_RETURN(std::string clean, CleanContainerPath(bind.destination));
  if (IsUnderProc(clean)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": binds into /proc are refused"));
  }
  ASSIGN_OR_RETURN(bool directory, IsDirectory(bind.source.get()));
  uint64_t attributes = kNoSuidDev | (bind.read_only ? MOUNT_ATTR_RDONLY : 0) |
                        (bind.no_exec ? MOUNT_ATTR_NOEXEC : 0);
  auto mnt = CloneTree(bind.source.get(), "", attributes);
  if (!mnt.ok()) return Annotate(mnt.status(), what);
  return planner.AtHostTree(std::move(*mnt), bind.destination, directory, what);
}

// A fresh tmpfs; its root belongs to the daemon unless `owner` is given (a
// uid 0 would not even exist in user mode's namespace).
absl::StatusOr<UniqueFd> Tmpfs(const std::string& mode, const Identity* owner,
                               uint64_t attributes) {
  std::vector<FsOption> options = {{"mode", mode}};
  if (owner != nullptr) {
    options.push_back({"uid", absl::StrCat(owner->uid)});
    options.push_back({"gid", absl::StrCat(owner->gid)});
  }
  return NewDetachedMount("tmpfs", options, attributes);
}

}  // namespace berth::daemon::launch
