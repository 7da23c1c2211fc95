// The container's mount list, in the order the child attaches it:
//   /proc  /sys  /dev (host, or minimal; with GPU/CDI nodes)  /tmp /var/tmp
//   $HOME  /etc/hosts /etc/localtime /etc/resolv.conf  GPU/CDI files
//   user binds  cwd
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
#include "daemon/launch/mount_planner.h"
#include "daemon/launch/prepare.h"
#include "daemon/launch/prepare_devices.h"

namespace berth::daemon::launch {
namespace {

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

absl::Status PlanMinimalDev(MountPlanner& planner, const DeviceSet& devices, bool devpts) {
  const char* what = "mounting a minimal /dev";
  auto dev = NewDetachedMount("tmpfs", {{"mode", "0755"}, {"size", "65536"}},
                              DevTmpfsAttributes(devices, /*full=*/false));
  if (!dev.ok()) return Annotate(dev.status(), what);
  RETURN_IF_ERROR_CTX(PopulateMinimalDev(dev->get()), what);
  int base = dev->get();
  RETURN_IF_ERROR(planner.At(std::move(*dev), "/dev", true, what));
  for (const DeviceNode& node : kMinimalDevices) {
    auto mnt = VerifiedDevice(node);
    if (!mnt.ok()) return Annotate(mnt.status(), what);
    planner.Beneath(std::move(*mnt), base, node.name, absl::StrCat("mounting /dev/", node.name));
  }
  if (devpts) {
    auto pts =
        NewDetachedMount("devpts", {{"newinstance", ""}, {"ptmxmode", "0666"}, {"mode", "0620"}},
                         MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
    if (!pts.ok()) return Annotate(pts.status(), "mounting /dev/pts");
    planner.Beneath(std::move(*pts), base, "pts", "mounting /dev/pts");
  }
  auto shm = NewDetachedMount("tmpfs", {{"mode", "1777"}}, kNoSuidDev);
  if (!shm.ok()) return Annotate(shm.status(), "mounting /dev/shm");
  planner.Beneath(std::move(*shm), base, "shm", "mounting /dev/shm");
  return PlanDevicesInDev(planner, base, devices);
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
  if (sys.proc && !spec.pid_namespace && !GetHostFacts().initial_user_namespace) {
    // A user-mode daemon's user namespace does not own the host's PID
    // namespace, so it may not mount a procfs of it: the host's /proc is
    // bound instead, as Apptainer does in user namespace mode.
    ASSIGN_OR_RETURN(UniqueFd mnt, HostTree("/proc", kNoSuidDev | MOUNT_ATTR_NOEXEC));
    RETURN_IF_ERROR(planner.AtHostTree(std::move(mnt), "/proc", true, "mounting /proc"));
  } else if (sys.proc) {
    RETURN_IF_ERROR(planner.Proc());
  }
  if (sys.sys) {
    bool real_root = spec.identity.uid == 0 && !spec.fakeroot;
    uint64_t ro = real_root ? 0 : MOUNT_ATTR_RDONLY;
    ASSIGN_OR_RETURN(UniqueFd mnt, HostTree("/sys", kNoSuidDev | MOUNT_ATTR_NOEXEC | ro));
    RETURN_IF_ERROR(planner.AtHostTree(std::move(mnt), "/sys", true, "mounting /sys"));
  }
  bool minimal_dev = spec.contain || sys.minimal_dev;
  if (sys.dev && minimal_dev) RETURN_IF_ERROR(PlanMinimalDev(planner, spec.devices, sys.devpts));
  if (sys.dev && !minimal_dev && DevicesInDev(spec.devices)) {
    RETURN_IF_ERROR(PlanHostDevWithDevices(planner, spec.devices));
  } else if (sys.dev && !minimal_dev) {
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
    const std::optional<BindSpec>& workdir =
        tmp == std::string("/tmp") ? spec.workdir_tmp : spec.workdir_var_tmp;
    if (private_tmp && workdir) {
      RETURN_IF_ERROR(PlanBind(planner, *workdir, what));
      continue;
    }
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
  if (!spec.contain || spec.home->source.valid()) return PlanBind(planner, *spec.home, what);
  auto mnt = Tmpfs("0700", &spec.identity, kNoSuidDev);
  if (!mnt.ok()) return Annotate(mnt.status(), what);
  return planner.AtOwnTmpfs(std::move(*mnt), spec.home->destination, what);
}

// -S without -W: a private tmpfs per directory, the caller's, mode 0700.
absl::Status PlanScratch(const LaunchSpec& spec, MountPlanner& planner) {
  for (const std::string& dest : spec.scratch_tmpfs) {
    std::string what = absl::StrCat("mounting the scratch directory ", dest);
    ASSIGN_OR_RETURN(std::string clean, CleanContainerPath(dest));
    if (IsUnderProc(clean)) return absl::InvalidArgumentError(absl::StrCat(what, ": under /proc"));
    auto mnt = Tmpfs("0700", &spec.identity, kNoSuidDev);
    if (!mnt.ok()) return Annotate(mnt.status(), what);
    RETURN_IF_ERROR(planner.AtOwnTmpfs(std::move(*mnt), dest, what));
  }
  return absl::OkStatus();
}

absl::Status PlanEtcFiles(const LaunchSpec& spec, MountPlanner& planner) {
  if (!spec.system_mounts.etc_files) return absl::OkStatus();
  const std::vector<std::string>& skip = spec.system_mounts.etc_skip;
  for (const char* path : {"/etc/hosts", "/etc/localtime", "/etc/resolv.conf"}) {
    if (std::find(skip.begin(), skip.end(), path) != skip.end()) continue;
    if (!spec.resolv_conf.empty() && path == std::string("/etc/resolv.conf")) continue;
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
  RETURN_IF_ERROR(PlanScratch(spec, planner));
  RETURN_IF_ERROR(PlanEtcFiles(spec, planner));
  RETURN_IF_ERROR(PlanDeviceFiles(planner, spec.devices, spec.system_mounts.dev));
  return PlanUserBinds(spec, planner);
}

}  // namespace berth::daemon::launch
