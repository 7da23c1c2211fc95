// The container's mount list, in the order the child attaches it:
//   /proc  /sys  /dev (host, or minimal)  /tmp /var/tmp  $HOME
//   /etc/hosts /etc/localtime /etc/resolv.conf  user binds  cwd
// Later mounts may sit inside earlier ones (a bind into $HOME), so system
// mounts come first and user binds go shortest destination first.
//
// Each source becomes a detached mount here, with its final attributes:
// nosuid (and nodev where no device is expected) everywhere, ro where asked,
// and slave propagation so that nothing mounted inside the container ever
// propagates back to the host. Bind sources are the caller's descriptors,
// never re-opened by path.
//
// Privilege: the daemon's (open_tree clones, fsmount of tmpfs/devpts).
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <numeric>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/launch/image_paths.h"
#include "daemon/launch/mount_api.h"
#include "daemon/launch/prepare.h"

namespace berth::daemon::launch {
namespace {

constexpr uint64_t kNoSuidDev = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

class MountPlanner {
 public:
  MountPlanner(int image_fd, int staging_fd, PreparedLaunch& p)
      : image_fd_(image_fd), staging_fd_(staging_fd), p_(p) {}

  // `mnt` at the container path `dest`, its mount point made if missing.
  // Below a host tree attached earlier, `dest` is resolved as the caller.
  absl::Status At(UniqueFd mnt, absl::string_view dest, bool directory, std::string what) {
    ASSIGN_OR_RETURN(std::string clean, CleanContainerPath(dest));
    RETURN_IF_ERROR_CTX(MakeMountPoint(clean, directory), what);
    bool below_host = std::any_of(host_trees_.begin(), host_trees_.end(),
                                  [&](const std::string& tree) { return IsBelow(clean, tree); });
    p_.plan.mounts.push_back(
        {MountStep::kAttach, mnt.get(), -1, clean, std::move(what), {}, below_host});
    p_.owned.push_back(std::move(mnt));
    return absl::OkStatus();
  }

  // Like At() for a tree of the host's (a bind source, /tmp, /sys, /dev).
  absl::Status AtHostTree(UniqueFd mnt, absl::string_view dest, bool directory, std::string what) {
    RETURN_IF_ERROR(At(std::move(mnt), dest, directory, std::move(what)));
    if (directory) host_trees_.push_back(p_.plan.mounts.back().destination);
    return absl::OkStatus();
  }

  // Like At() for a fresh, empty tmpfs of ours: later mount points beneath
  // it are created in it (it is no one else's and not the image).
  absl::Status AtOwnTmpfs(UniqueFd mnt, absl::string_view dest, std::string what) {
    int fd = mnt.get();
    RETURN_IF_ERROR(At(std::move(mnt), dest, true, std::move(what)));
    own_tmpfs_.push_back({p_.plan.mounts.back().destination, fd});
    return absl::OkStatus();
  }

  absl::Status Proc() {
    RETURN_IF_ERROR_CTX(MakeMountPoint("proc", true), "mounting /proc");
    p_.plan.mounts.push_back({MountStep::kProcfs, -1, -1, "proc", "mounting /proc", {}});
    return absl::OkStatus();
  }

  // `mnt` at `rel` beneath `base_fd`, a mount of ours attached by an earlier step.
  void Beneath(UniqueFd mnt, int base_fd, std::string rel, std::string what) {
    p_.plan.mounts.push_back(
        {MountStep::kAttach, mnt.get(), base_fd, std::move(rel), std::move(what), {}});
    p_.owned.push_back(std::move(mnt));
  }

 private:
  struct OwnTmpfs {
    std::string destination;
    int fd;
  };

  // Is the clean container path `path` strictly below `dir`?
  static bool IsBelow(const std::string& path, const std::string& dir) {
    return path.size() > dir.size() && absl::StartsWith(path, dir) && path[dir.size()] == '/';
  }

  // In the deepest of our fresh tmpfs mounts that will cover `clean`, or in
  // the staging layer above the image.
  absl::Status MakeMountPoint(const std::string& clean, bool directory) {
    for (auto it = own_tmpfs_.rbegin(); it != own_tmpfs_.rend(); ++it) {
      if (IsBelow(clean, it->destination)) {
        return MakeInTmpfs(it->fd, clean.substr(it->destination.size() + 1), directory);
      }
    }
    return StageMountPoint(image_fd_, staging_fd_, clean, directory);
  }

  static absl::Status MakeInTmpfs(int tmpfs_fd, const std::string& rel, bool directory) {
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

  int image_fd_;
  int staging_fd_;
  PreparedLaunch& p_;
  std::vector<OwnTmpfs> own_tmpfs_;
  std::vector<std::string> host_trees_;  // clean destinations of host directories
};

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
  uint64_t attributes = kNoSuidDev | (bind.read_only ? MOUNT_ATTR_RDONLY : 0);
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

struct DeviceNode {
  const char* name;
  unsigned major;
  unsigned minor;
};
constexpr DeviceNode kMinimalDevices[] = {{"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
                                          {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};

// A bind of the host's node, made from a descriptor checked to be the right
// character device: a symlink, FIFO or file at /dev/null is followed nowhere
// (CVE-2025-31133).
absl::StatusOr<UniqueFd> VerifiedDevice(const DeviceNode& dev) {
  std::string path = absl::StrCat("/dev/", dev.name);
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_PATH | O_NOFOLLOW));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(path, errno);
  if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != dev.major || minor(st.st_rdev) != dev.minor) {
    return absl::FailedPreconditionError(
        absl::StrCat("host ", path, " is not the character device ", dev.major, ":", dev.minor));
  }
  ASSIGN_OR_RETURN(UniqueFd mnt, CloneDetached(fd.get(), "", /*recursive=*/false));
  RETURN_IF_ERROR(SetMountAttributes(mnt.get(), MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, MS_SLAVE,
                                     /*recursive=*/false));
  return mnt;
}

// A tmpfs holding placeholders for the nodes, pts and shm, and the usual
// symlinks; the nodes are then bound over their placeholders.
absl::Status PopulateMinimalDev(int dev) {
  for (const DeviceNode& node : kMinimalDevices) {
    UniqueFd f(::openat(dev, node.name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
    if (!f) return ErrnoStatus(absl::StrCat("/dev/", node.name), errno);
  }
  for (const char* dir : {"pts", "shm"}) {
    if (::mkdirat(dev, dir, 0755) != 0) return ErrnoStatus(absl::StrCat("/dev/", dir), errno);
  }
  const std::pair<const char*, const char*> links[] = {{"/proc/self/fd", "fd"},
                                                       {"/proc/self/fd/0", "stdin"},
                                                       {"/proc/self/fd/1", "stdout"},
                                                       {"/proc/self/fd/2", "stderr"},
                                                       {"pts/ptmx", "ptmx"}};
  for (const auto& [target, name] : links) {
    if (::symlinkat(target, dev, name) != 0) return ErrnoStatus(absl::StrCat("/dev/", name), errno);
  }
  return absl::OkStatus();
}

// One of LaunchSpec::devices: a placeholder (and its directories) in the
// minimal /dev, then the host's node bound over it, checked as
// VerifiedDevice checks the standard ones.
absl::Status PlanExtraDevice(MountPlanner& planner, int dev, const std::string& path) {
  absl::string_view rel = path;
  if (!absl::ConsumePrefix(&rel, "/dev/") || rel.empty() || absl::StrContains(path, "/.")) {
    return absl::InvalidArgumentError(absl::StrCat("device ", path, " is not below /dev"));
  }
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_PATH | O_NOFOLLOW));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(path, errno);
  if (!S_ISCHR(st.st_mode))
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a character device"));
  for (size_t slash = rel.find('/'); slash != absl::string_view::npos;
       slash = rel.find('/', slash + 1)) {
    std::string dir(rel.substr(0, slash));
    if (::mkdirat(dev, dir.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus(path, errno);
  }
  UniqueFd f(
      ::openat(dev, std::string(rel).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666));
  if (!f) return ErrnoStatus(path, errno);
  ASSIGN_OR_RETURN(UniqueFd mnt, CloneDetached(fd.get(), "", /*recursive=*/false));
  RETURN_IF_ERROR(SetMountAttributes(mnt.get(), MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, MS_SLAVE,
                                     /*recursive=*/false));
  planner.Beneath(std::move(mnt), dev, std::string(rel), absl::StrCat("mounting ", path));
  return absl::OkStatus();
}

absl::Status PlanMinimalDev(MountPlanner& planner, const std::vector<std::string>& devices) {
  const char* what = "mounting a minimal /dev";
  auto dev = NewDetachedMount("tmpfs", {{"mode", "0755"}, {"size", "65536"}},
                              kNoSuidDev | MOUNT_ATTR_NOEXEC);
  if (!dev.ok()) return Annotate(dev.status(), what);
  RETURN_IF_ERROR_CTX(PopulateMinimalDev(dev->get()), what);
  int base = dev->get();
  RETURN_IF_ERROR(planner.At(std::move(*dev), "/dev", true, what));
  for (const DeviceNode& node : kMinimalDevices) {
    auto mnt = VerifiedDevice(node);
    if (!mnt.ok()) return Annotate(mnt.status(), what);
    planner.Beneath(std::move(*mnt), base, node.name, absl::StrCat("mounting /dev/", node.name));
  }
  auto pts =
      NewDetachedMount("devpts", {{"newinstance", ""}, {"ptmxmode", "0666"}, {"mode", "0620"}},
                       MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
  if (!pts.ok()) return Annotate(pts.status(), "mounting /dev/pts");
  planner.Beneath(std::move(*pts), base, "pts", "mounting /dev/pts");
  auto shm = NewDetachedMount("tmpfs", {{"mode", "1777"}}, kNoSuidDev);
  if (!shm.ok()) return Annotate(shm.status(), "mounting /dev/shm");
  planner.Beneath(std::move(*shm), base, "shm", "mounting /dev/shm");
  for (const std::string& device : devices) {
    RETURN_IF_ERROR_CTX(PlanExtraDevice(planner, base, device), what);
  }
  return absl::OkStatus();
}

// A shared container's own /dev/shm over the host's (LaunchSpec::private_tmp).
absl::Status PlanPrivateShm(MountPlanner& planner, int dev_base) {
  auto shm = NewDetachedMount("tmpfs", {{"mode", "1777"}}, kNoSuidDev);
  if (!shm.ok()) return Annotate(shm.status(), "mounting /dev/shm");
  planner.Beneath(std::move(*shm), dev_base, "shm", "mounting /dev/shm");
  return absl::OkStatus();
}

absl::Status PlanSystemMounts(const LaunchSpec& spec, MountPlanner& planner) {
  const SystemMounts& sys = spec.system_mounts;
  if (sys.proc) RETURN_IF_ERROR(planner.Proc());
  if (sys.sys) {
    bool real_root = spec.identity.uid == 0 && !spec.fakeroot;
    uint64_t ro = real_root ? 0 : MOUNT_ATTR_RDONLY;
    ASSIGN_OR_RETURN(UniqueFd mnt, HostTree("/sys", kNoSuidDev | MOUNT_ATTR_NOEXEC | ro));
    RETURN_IF_ERROR(planner.AtHostTree(std::move(mnt), "/sys", true, "mounting /sys"));
  }
  bool minimal_dev = spec.contain || sys.minimal_dev;
  if (sys.dev && minimal_dev) RETURN_IF_ERROR(PlanMinimalDev(planner, spec.devices));
  if (sys.dev && !minimal_dev) {
    ASSIGN_OR_RETURN(UniqueFd mnt, HostTree("/dev", MOUNT_ATTR_NOSUID));
    int base = mnt.get();
    RETURN_IF_ERROR(planner.AtHostTree(std::move(mnt), "/dev", true, "mounting /dev"));
    if (spec.private_tmp) RETURN_IF_ERROR(PlanPrivateShm(planner, base));
  }
  bool private_tmp = spec.contain || spec.private_tmp;
  for (const char* tmp : {"/tmp", "/var/tmp"}) {
    if (!sys.tmp) break;
    std::string what = absl::StrCat("mounting ", tmp);
    if (!private_tmp && ::access(tmp, F_OK) != 0) continue;  // the host has none
    if (private_tmp) {
      auto mnt = Tmpfs("1777", nullptr, kNoSuidDev);
      if (!mnt.ok()) return Annotate(mnt.status(), what);
      RETURN_IF_ERROR(planner.AtOwnTmpfs(std::move(*mnt), tmp, what));
      continue;
    }
    auto mnt = HostTree(tmp, kNoSuidDev);
    if (!mnt.ok()) return Annotate(mnt.status(), what);
    RETURN_IF_ERROR(planner.AtHostTree(std::move(*mnt), tmp, true, what));
  }
  return absl::OkStatus();
}

absl::Status PlanHome(const LaunchSpec& spec, MountPlanner& planner) {
  if (!spec.home) return absl::OkStatus();
  std::string what = absl::StrCat("mounting the home directory ", spec.home->destination);
  if (!spec.contain) return PlanBind(planner, *spec.home, what);
  auto mnt = Tmpfs("0700", &spec.identity, kNoSuidDev);
  if (!mnt.ok()) return Annotate(mnt.status(), what);
  return planner.AtOwnTmpfs(std::move(*mnt), spec.home->destination, what);
}

absl::Status PlanEtcFiles(const LaunchSpec& spec, MountPlanner& planner) {
  if (!spec.system_mounts.etc_files) return absl::OkStatus();
  for (const char* path : {"/etc/hosts", "/etc/localtime", "/etc/resolv.conf"}) {
    std::string what = absl::StrCat("mounting ", path);
    auto fd = OpenFile(path, O_PATH);
    if (!fd.ok()) continue;  // a host without one gives none
    struct stat st;
    if (::fstat(fd->get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    auto mnt = CloneDetached(fd->get(), "", /*recursive=*/false);
    if (!mnt.ok()) return Annotate(mnt.status(), what);
    RETURN_IF_ERROR_CTX(
        SetMountAttributes(mnt->get(), kNoSuidDev | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_RDONLY, MS_SLAVE,
                           false),
        what);
    RETURN_IF_ERROR(planner.At(std::move(*mnt), path, false, what));
  }
  return absl::OkStatus();
}

absl::Status PlanUserBinds(const LaunchSpec& spec, MountPlanner& planner) {
  std::vector<size_t> order(spec.binds.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return spec.binds[a].destination.size() < spec.binds[b].destination.size();
  });
  for (size_t i : order) {
    const BindSpec& bind = spec.binds[i];
    RETURN_IF_ERROR(PlanBind(planner, bind,
                             absl::StrCat("binding ", bind.source_path, " at ", bind.destination)));
  }
  if (spec.cwd_bind) {
    const BindSpec& cwd = *spec.cwd_bind;
    RETURN_IF_ERROR(PlanBind(
        planner, cwd,
        absl::StrCat("binding the working directory ", cwd.source_path, " at ", cwd.destination)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status PlanMounts(LaunchSpec& spec, int staging_fd, PreparedLaunch& prepared) {
  MountPlanner planner(prepared.image_fd.get(), staging_fd, prepared);
  RETURN_IF_ERROR(PlanSystemMounts(spec, planner));
  RETURN_IF_ERROR(PlanHome(spec, planner));
  RETURN_IF_ERROR(PlanEtcFiles(spec, planner));
  return PlanUserBinds(spec, planner);
}

}  // namespace berth::daemon::launch
