#include "daemon/launch/prepare_devices.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/launch/image_paths.h"
#include "daemon/launch/mount_api.h"

namespace berth::daemon::launch {
namespace {

// "dev/nvidia0" → "nvidia0"; empty when `clean` is not beneath /dev.
std::string InDev(const std::string& clean) {
  return absl::StartsWith(clean, "dev/") ? clean.substr(4) : "";
}

std::string CleanOrEmpty(const std::string& destination) {
  auto clean = CleanContainerPath(destination);
  return clean.ok() ? *clean : "";
}

absl::StatusOr<struct stat> CheckedNode(const DeviceSpec& d) {
  struct stat st;
  if (!d.node.valid() || ::fstat(d.node.get(), &st) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("device ", d.source_path, ": no node"));
  }
  if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("device ", d.source_path, " is not a character or block device"));
  }
  return st;
}

// A bind of the host's node, from the daemon's descriptor.
absl::StatusOr<UniqueFd> BindNode(const DeviceSpec& d) {
  ASSIGN_OR_RETURN(UniqueFd mnt, CloneDetached(d.node.get(), "", /*recursive=*/false));
  RETURN_IF_ERROR(SetMountAttributes(mnt.get(), MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, MS_SLAVE,
                                     /*recursive=*/false));
  return mnt;
}

// A new node of the same device in our /dev tmpfs, with the mode and owner
// the spec asks for. Needs CAP_MKNOD over the host: the system daemon.
absl::Status MakeNode(int dev_fd, const std::string& rel, const DeviceSpec& d,
                      const struct stat& host) {
  size_t slash = rel.find_last_of('/');
  if (slash != std::string::npos) {
    RETURN_IF_ERROR(MountPlanner::MakeInTmpfs(dev_fd, rel.substr(0, slash), true));
  }
  const DeviceSpec::Attributes& a = *d.make;
  ::unlinkat(dev_fd, rel.c_str(), 0);  // a minimal /dev's own node of that name
  if (::mknodat(dev_fd, rel.c_str(), (host.st_mode & S_IFMT) | 0600, host.st_rdev) != 0) {
    return ErrnoStatus(absl::StrCat("making ", d.destination,
                                    " with the mode and owner its CDI spec asks for (the system "
                                    "daemon can, a user-mode daemon cannot)"),
                       errno);
  }
  if (::fchownat(dev_fd, rel.c_str(), a.uid, a.gid, AT_SYMLINK_NOFOLLOW) != 0 ||
      ::fchmodat(dev_fd, rel.c_str(), a.mode & 07777, 0) != 0) {
    return ErrnoStatus(absl::StrCat("setting the owner and mode of ", d.destination), errno);
  }
  return absl::OkStatus();
}

absl::Status PlanNodeInDev(MountPlanner& planner, int dev_fd, const std::string& rel,
                           const DeviceSpec& d) {
  std::string what = absl::StrCat("mounting the device ", d.source_path, " at ", d.destination);
  ASSIGN_OR_RETURN(struct stat host, CheckedNode(d));
  if (d.make) {
    RETURN_IF_ERROR(MakeNode(dev_fd, rel, d, host));
    planner.Check(dev_fd, rel, std::move(what));
  } else {
    RETURN_IF_ERROR_CTX(MountPlanner::MakeInTmpfs(dev_fd, rel, false), what);
    auto mnt = BindNode(d);
    if (!mnt.ok()) return Annotate(mnt.status(), what);
    planner.Beneath(std::move(*mnt), dev_fd, rel, std::move(what));
  }
  planner.Last().device_access = d.access;
  planner.Last().device_optional = !d.required;
  return absl::OkStatus();
}

// Top-level /dev names the rebuilt /dev leaves to the devices (or out).
std::set<std::string> ReplacedNames(const DeviceSet& devices) {
  std::set<std::string> names(devices.hidden.begin(), devices.hidden.end());
  for (const DeviceSpec& d : devices.nodes) {
    std::string rel = InDev(CleanOrEmpty(d.destination));
    if (!rel.empty()) names.insert(rel.substr(0, rel.find('/')));
  }
  return names;
}

// The system daemon makes the host's device nodes afresh in our /dev (same
// numbers, mode and owner) instead of binding each: a mount costs ~30 µs to
// set up and tear down, a node a few, and a full /dev holds a hundred. A
// user-mode daemon may not make device nodes; it binds them.
bool CopiesNodes() {
  return GetHostFacts().initial_user_namespace;
}

absl::Status CopyNode(int dev_fd, const std::string& name, const struct stat& st) {
  if (::mknodat(dev_fd, name.c_str(), st.st_mode & (S_IFMT | 0777), st.st_rdev) != 0 ||
      ::fchownat(dev_fd, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0 ||
      ::fchmodat(dev_fd, name.c_str(), st.st_mode & 0777, 0) != 0) {
    return ErrnoStatus(absl::StrCat("copying the node /dev/", name), errno);
  }
  return absl::OkStatus();
}

// One host /dev entry back in our tmpfs: a symlink copied, a directory
// cloned with everything mounted in it, a device node copied (system mode),
// anything else bound.
absl::Status BindHostEntry(MountPlanner& planner, int dev_fd, const std::string& name) {
  std::string host = absl::StrCat("/dev/", name);
  struct stat st;
  if (::lstat(host.c_str(), &st) != 0) return absl::OkStatus();  // gone meanwhile
  if ((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) && CopiesNodes()) {
    return CopyNode(dev_fd, name, st);
  }
  if (S_ISLNK(st.st_mode)) {
    char target[PATH_MAX];
    ssize_t n = ::readlink(host.c_str(), target, sizeof target - 1);
    if (n < 0) return absl::OkStatus();
    target[n] = '\0';
    if (::symlinkat(target, dev_fd, name.c_str()) != 0) return ErrnoStatus(host, errno);
    return absl::OkStatus();
  }
  bool directory = S_ISDIR(st.st_mode);
  std::string what = absl::StrCat("mounting ", host);
  auto mnt = directory ? HostTree(host, MOUNT_ATTR_NOSUID) : CloneDetached(AT_FDCWD, host, false);
  if (!mnt.ok()) return Annotate(mnt.status(), what);
  if (!directory) {
    RETURN_IF_ERROR_CTX(SetMountAttributes(mnt->get(), MOUNT_ATTR_NOSUID, MS_SLAVE, false), what);
  }
  RETURN_IF_ERROR_CTX(MountPlanner::MakeInTmpfs(dev_fd, name, directory), what);
  planner.Beneath(std::move(*mnt), dev_fd, name, std::move(what));
  // As the host's /dev would be: binds below its directories resolve as the caller.
  if (directory) planner.NoteHostTree(absl::StrCat("dev/", name));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> HostDevNames() {
  DIR* dir = ::opendir("/dev");
  if (dir == nullptr) return ErrnoStatus("listing the host's /dev", errno);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

// Whether `clean` is, in the image, an empty directory or nothing at all
// (reached without a symlink: otherwise the staging layer decides).
bool EmptyInImage(int image_fd, const std::string& clean) {
  auto dir =
      OpenAt2(image_fd, clean, O_RDONLY | O_DIRECTORY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
  if (!dir.ok()) return absl::IsNotFound(dir.status());
  char buf[256];
  long n = ::syscall(SYS_getdents64, dir->get(), buf, sizeof buf);
  // An empty directory lists "." and ".." only: 2 entries of 24 bytes.
  return n >= 0 && n <= 48;
}

// The files' directory (DeviceSet::files_dir) when the image's is empty:
// the prebuilt tree of its files (true: nothing more to bind there), or a
// tmpfs of ours for their mount points, instead of a placeholder staged
// above the image for each of ~60 files.
absl::StatusOr<bool> PlanFilesDir(MountPlanner& planner, const DeviceSet& devices) {
  if (devices.files_dir.empty()) return false;
  ASSIGN_OR_RETURN(std::string clean, CleanContainerPath(devices.files_dir));
  if (!EmptyInImage(planner.image_fd(), clean)) return false;
  std::string what = absl::StrCat("mounting ", devices.files_dir);
  if (devices.files_tree) {
    RETURN_IF_ERROR(PlanBind(planner, *devices.files_tree, what));
    return true;
  }
  auto tmpfs = Tmpfs("0755", nullptr, kNoSuidDev | MOUNT_ATTR_NOEXEC);
  if (!tmpfs.ok()) return Annotate(tmpfs.status(), what);
  RETURN_IF_ERROR(planner.AtOwnTmpfs(std::move(*tmpfs), devices.files_dir, std::move(what)));
  return false;
}

}  // namespace

bool DevicesInDev(const DeviceSet& devices) {
  if (!devices.hidden.empty()) return true;
  return std::any_of(devices.nodes.begin(), devices.nodes.end(), [](const DeviceSpec& d) {
    return !InDev(CleanOrEmpty(d.destination)).empty();
  });
}

uint64_t DevTmpfsAttributes(const DeviceSet& devices, bool full) {
  bool makes = (full && CopiesNodes()) ||
               std::any_of(devices.nodes.begin(), devices.nodes.end(),
                           [](const DeviceSpec& d) { return d.make.has_value(); });
  return MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | (makes ? 0 : MOUNT_ATTR_NODEV);
}

absl::Status PlanDevicesInDev(MountPlanner& planner, int dev_fd, const DeviceSet& devices) {
  for (const DeviceSpec& d : devices.nodes) {
    std::string rel = InDev(CleanOrEmpty(d.destination));
    if (!rel.empty()) RETURN_IF_ERROR(PlanNodeInDev(planner, dev_fd, rel, d));
  }
  return absl::OkStatus();
}

absl::Status PlanHostDevWithDevices(MountPlanner& planner, const DeviceSet& devices) {
  const char* what = "mounting /dev";
  auto dev = NewDetachedMount("tmpfs", {{"mode", "0755"}, {"size", "65536"}},
                              DevTmpfsAttributes(devices, /*full=*/true));
  if (!dev.ok()) return Annotate(dev.status(), what);
  int dev_fd = dev->get();
  RETURN_IF_ERROR(planner.AtOwnTmpfs(std::move(*dev), "/dev", what));
  std::set<std::string> replaced = ReplacedNames(devices);
  ASSIGN_OR_RETURN(std::vector<std::string> names, HostDevNames());
  for (const std::string& name : names) {
    if (!replaced.count(name)) RETURN_IF_ERROR(BindHostEntry(planner, dev_fd, name));
  }
  return PlanDevicesInDev(planner, dev_fd, devices);
}

absl::Status PlanDeviceFiles(MountPlanner& planner, const DeviceSet& devices, bool dev_mounted) {
  for (const DeviceSpec& d : devices.nodes) {
    std::string clean = CleanOrEmpty(d.destination);
    if (clean.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("device ", d.source_path, ": destination '",
                                                     d.destination,
                                                     "' is not a clean absolute path"));
    }
    if (dev_mounted && !InDev(clean).empty()) continue;
    std::string what = absl::StrCat("mounting the device ", d.source_path, " at ", d.destination);
    if (d.make) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": a mode or owner of its own needs a destination in /dev"));
    }
    RETURN_IF_ERROR_CTX(CheckedNode(d).status(), what);
    auto mnt = BindNode(d);
    if (!mnt.ok()) return Annotate(mnt.status(), what);
    RETURN_IF_ERROR(planner.At(std::move(*mnt), d.destination, false, what));
    planner.Last().device_access = d.access;
  }
  ASSIGN_OR_RETURN(bool tree, PlanFilesDir(planner, devices));
  for (const BindSpec& f : devices.files) {
    if (tree && MountPlanner::IsBelow(f.destination, devices.files_dir)) continue;
    RETURN_IF_ERROR(
        PlanBind(planner, f, absl::StrCat("binding ", f.source_path, " at ", f.destination)));
  }
  return absl::OkStatus();
}

}  // namespace berth::daemon::launch
