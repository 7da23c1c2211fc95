// The child builds the container's mount tree in its new mount namespace
// and pivots into it. Rules: child.h.
//
// Shape of the tree (all made by the parent as detached mounts except the
// overlay, the staging clones and /proc, which must be made here):
//   /              either a bind root (prepare_bind_root.cc), ro,nosuid,nodev:
//                    a clone of the image's mount, or of the session's
//                    "staging" directory, with image entries and staging
//                    parts bound where the image lacks something;
//                  or overlayfs, ro,nosuid,nodev (rw with --writable-tmpfs):
//                    upper  = session tmpfs "upper" (--writable-tmpfs only)
//                    lower  = session tmpfs "staging" : image_root
//                  with -o/--overlay, every layer a /proc/self/fd link:
//                    upper  = the caller's DIR/upper (work: DIR/work), made
//                             with the caller's identity (CreateOverlayAsCaller)
//                    lower  = staging : the :ro and squashfs overlays : a
//                             clone of the image's mount
//   /proc          fresh procfs of the container's PID namespace
//   /sys, /dev,... bind mounts and tmpfs in MountStep order (prepare_mounts.cc)
//
// overlayfs takes its layers by path and, before Linux 6.15, only from
// mounts in the caller's namespace; so the session tmpfs is briefly attached
// over "/" (invisible to path lookups, which start at the root dentry
// beneath it), the overlay made from "/proc/self/fd/N/..." paths, and the
// session tmpfs detached again (the overlay holds its own references).
//
// Privilege: the daemon's (CAP_SYS_ADMIN over the new mount namespace).
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "daemon/launch/child_internal.h"
#include "daemon/launch/launch.h"

namespace berth::daemon::launch::child {
namespace {

constexpr uint64_t kInRoot = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

// Mount events must never flow from the container to the daemon; host events
// (an automounted /home) may still flow in.
void DetachFromHostPropagation(const ChildPlan& plan) {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    Fail(plan, "making the container's mounts slaves of the host's", nullptr, errno);
  }
}

// overlayfs keeps the credentials of whoever creates it and does every
// operation on the upper layer (copy-up, whiteouts, its work directory)
// with them. For a caller's own upper directory those are the caller's
// fsuid, fsgid and groups, so everything made there is the caller's, with
// two capabilities only: CAP_SYS_ADMIN (creating the filesystem, its
// trusted.overlay.* attributes) and CAP_DAC_OVERRIDE (overlayfs makes its
// work/work directory mode 0 and works in it, as a user-namespace mounter
// may over its own files). Never CAP_CHOWN, CAP_FOWNER, CAP_FSETID or
// CAP_MKNOD: a copy-up of a file that is not the caller's fails rather
// than making a root-owned (setuid) file in a user's directory. Every
// access through the overlay is first checked with the container process's
// own credentials (ovl_permission), so the override reaches nothing the
// caller could not. Only the calling thread's filesystem identity changes,
// and it is restored and verified after.
int CreateOverlayAsCaller(const ChildPlan& plan, int fs) {
  const char* what = "creating the overlay as the caller";
  if (plan.can_setgroups && syscall(SYS_setgroups, plan.groups.size(), plan.groups.data()) != 0) {
    Fail(plan, what, "setgroups", errno);
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct saved[2]{}, reduced[2]{};
  if (syscall(SYS_capget, &header, saved) != 0) Fail(plan, what, "capget", errno);
  long uid = syscall(SYS_setfsuid, -1), gid = syscall(SYS_setfsgid, -1);
  syscall(SYS_setfsgid, plan.gid);
  syscall(SYS_setfsuid, plan.uid);
  if (syscall(SYS_setfsuid, -1) != static_cast<long>(plan.uid) ||
      syscall(SYS_setfsgid, -1) != static_cast<long>(plan.gid)) {
    Fail(plan, what, "setfsuid", EPERM);
  }
  reduced[0] = saved[0];
  reduced[1] = saved[1];
  reduced[0].effective = (1u << CAP_SYS_ADMIN) | (1u << CAP_DAC_OVERRIDE);
  reduced[1].effective = 0;
  if (syscall(SYS_capset, &header, reduced) != 0) Fail(plan, what, "capset", errno);
  int rc = fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0);
  int err = errno;
  syscall(SYS_setfsuid, uid);
  syscall(SYS_setfsgid, gid);
  if (syscall(SYS_capset, &header, saved) != 0) Fail(plan, what, "restoring capabilities", errno);
  if (syscall(SYS_setfsuid, -1) != uid || syscall(SYS_setfsgid, -1) != gid) {
    Fail(plan, what, "restoring the daemon's identity", EPERM);
  }
  errno = err;
  return rc;
}

int MountRootOverlay(const ChildPlan& plan) {
  const char* what = "mounting the root overlay";
  if (move_mount(plan.session_fd, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    Fail(plan, what, "attaching the session tmpfs", errno);
  }
  for (const auto& [tree, name] : plan.overlay_trees) {
    if (move_mount(tree, "", plan.session_fd, name.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
      Fail(plan, what, "attaching an --overlay layer", errno);
    }
  }
  int fs = fsopen("overlay", FSOPEN_CLOEXEC);
  if (fs < 0) Fail(plan, what, "fsopen", errno);
  for (const auto& [key, value] : plan.overlay_options) {
    int rc = value.empty() ? fsconfig(fs, FSCONFIG_SET_FLAG, key.c_str(), nullptr, 0)
                           : fsconfig(fs, FSCONFIG_SET_STRING, key.c_str(), value.c_str(), 0);
    if (rc != 0) FailFs(plan, what, fs, errno);
  }
  int created = plan.overlay_as_caller && plan.uid != 0
                    ? CreateOverlayAsCaller(plan, fs)
                    : fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0);
  if (created != 0) FailFs(plan, what, fs, errno);
  int root = fsmount(fs, FSMOUNT_CLOEXEC, static_cast<unsigned>(plan.overlay_attr));
  if (root < 0) FailFs(plan, what, fs, errno);
  close(fs);
  if (umount2(plan.session_path.c_str(), MNT_DETACH) != 0) {
    Fail(plan, what, "detaching the session tmpfs", errno);
  }
  // Stacked over the daemon's root until pivot_root makes it the root.
  if (move_mount(root, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    Fail(plan, what, "attaching it", errno);
  }
  return root;
}

// A read-only clone of `path` on the attached session tmpfs.
int CloneStaging(const ChildPlan& plan, const char* path, const char* what) {
  int fd = open_tree(plan.session_fd, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (fd < 0) Fail(plan, what, "cloning the staging tree", errno);
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  attr.propagation = MS_PRIVATE;
  if (mount_setattr(fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
    Fail(plan, what, "making the staging clone read-only", errno);
  }
  return fd;
}

// The session tmpfs is attached over "/" only while its parts are cloned:
// clones of a detached mount need Linux 6.15.
int MountBindRoot(ChildPlan& plan) {
  const char* what = "mounting the container's root";
  bool clones = plan.root_from_staging;
  for (const MountStep& step : plan.mounts) clones |= step.kind == MountStep::kStagingClone;
  int root = plan.root_fd;
  if (clones) {
    if (move_mount(plan.session_fd, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH) != 0) {
      Fail(plan, what, "attaching the session tmpfs", errno);
    }
    for (MountStep& step : plan.mounts) {
      if (step.kind != MountStep::kStagingClone) continue;
      step.source_fd = CloneStaging(plan, step.source_path.c_str(), step.what.c_str());
    }
    if (plan.root_from_staging) root = CloneStaging(plan, "staging", what);
    if (umount2(plan.session_path.c_str(), MNT_DETACH) != 0) {
      Fail(plan, what, "detaching the session tmpfs", errno);
    }
  }
  // Stacked over the daemon's root until pivot_root makes it the root.
  if (move_mount(root, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    Fail(plan, what, "attaching it", errno);
  }
  return root;
}

int NewProcfs(const ChildPlan& plan, const MountStep& step) {
  int fs = fsopen("proc", FSOPEN_CLOEXEC);
  if (fs < 0) Fail(plan, step.what.c_str(), "fsopen", errno);
  if (fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    FailFs(plan, step.what.c_str(), fs, errno);
  }
  int mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  if (mnt < 0) FailFs(plan, step.what.c_str(), fs, errno);
  close(fs);
  return mnt;
}

// Whether the caller's device cgroup lets the container open the node: the
// child is in the caller's cgroups by now, and inode_permission consults the
// device controller (v1 devices.list, v2 BPF program) on faccessat2. A node
// the cgroup forbids is left out when optional (its placeholder removed),
// and fails the launch when the request named it.
bool DeviceAllowed(const ChildPlan& plan, int base, const MountStep& step) {
  long rc = step.kind == MountStep::kDeviceCheck
                ? syscall(SYS_faccessat2, base, step.destination.c_str(), step.device_access, 0)
                : syscall(SYS_faccessat2, step.source_fd, "", step.device_access, AT_EMPTY_PATH);
  // EACCES is the node's own mode (user mode): the container meets it too.
  if (rc == 0 || errno == EACCES) return true;
  if (errno != EPERM) Fail(plan, step.what.c_str(), "checking the device", errno);
  if (!step.device_optional) {
    Fail(plan, step.what.c_str(), "the caller's device cgroup does not allow it", errno);
  }
  unlinkat(base, step.destination.c_str(), 0);
  return false;
}

// OpenAt2 with the caller's filesystem identity (MountStep::resolve_as_caller).
// Leaving fsuid 0 drops the filesystem capabilities and returning to it
// restores them; the supplementary groups are set to the caller's now and
// again by DropPrivileges.
int ResolveAsCaller(const ChildPlan& plan, int base, const char* path) {
  const char* what = "resolving a destination as the caller";
  if (plan.can_setgroups && syscall(SYS_setgroups, plan.groups.size(), plan.groups.data()) != 0) {
    Fail(plan, what, "setgroups", errno);
  }
  long uid = syscall(SYS_setfsuid, -1), gid = syscall(SYS_setfsgid, -1);
  syscall(SYS_setfsgid, plan.gid);
  syscall(SYS_setfsuid, plan.uid);
  if (syscall(SYS_setfsuid, -1) != static_cast<long>(plan.uid)) Fail(plan, what, "setfsuid", EPERM);
  int fd = OpenAt2(base, path, O_PATH, kInRoot);
  int err = errno;
  syscall(SYS_setfsuid, uid);
  syscall(SYS_setfsgid, gid);
  if (syscall(SYS_setfsuid, -1) != uid || syscall(SYS_setfsgid, -1) != gid) {
    Fail(plan, what, "restoring the daemon's identity", EPERM);
  }
  errno = err;
  return fd;
}

// The destination is resolved by the kernel beneath the new root (or an
// attached mount of ours), never through a symlink out of it, and the mount
// is placed on that descriptor: nothing can be swapped between the two
// (CVE-2021-30465).
void Attach(const ChildPlan& plan, int root, const MountStep& step) {
  int base = step.base_fd >= 0 ? step.base_fd : root;
  if (step.device_access != 0 && !DeviceAllowed(plan, base, step)) return;
  if (step.kind == MountStep::kDeviceCheck) return;
  int target = step.resolve_as_caller ? ResolveAsCaller(plan, base, step.destination.c_str())
                                      : OpenAt2(base, step.destination.c_str(), O_PATH, kInRoot);
  if (target < 0) Fail(plan, step.what.c_str(), "resolving the destination", errno);
  int source = step.kind == MountStep::kProcfs ? NewProcfs(plan, step) : step.source_fd;
  if (move_mount(source, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
    Fail(plan, step.what.c_str(), nullptr, errno);
  }
  close(target);
  if (step.kind != MountStep::kAttach) close(source);
}

// pivot_root(".", ".") stacks the old root on the new one; unmounting "."
// from the old root's directory then drops the host's tree for good.
void PivotInto(const ChildPlan& plan, int root) {
  const char* what = "pivoting into the container's root";
  int old_root = open("/", O_DIRECTORY | O_PATH | O_CLOEXEC);
  if (old_root < 0) Fail(plan, what, "opening the old root", errno);
  if (fchdir(root) != 0) Fail(plan, what, "entering the new root", errno);
  if (syscall(SYS_pivot_root, ".", ".") != 0) Fail(plan, what, nullptr, errno);
  if (fchdir(old_root) != 0) Fail(plan, what, "entering the old root", errno);
  if (umount2(".", MNT_DETACH) != 0) Fail(plan, what, "detaching the old root", errno);
  if (chdir("/") != 0) Fail(plan, what, "entering /", errno);
  close(old_root);
  close(root);
}

}  // namespace

void BuildRootAndPivot(ChildPlan& plan) {
  DetachFromHostPropagation(plan);
  int root = plan.overlay_options.empty() ? MountBindRoot(plan) : MountRootOverlay(plan);
  for (const MountStep& step : plan.mounts) Attach(plan, root, step);
  RunHooks(plan, static_cast<int>(HookSpec::Stage::kCreateContainer), plan.hook_output_fd);
  PivotInto(plan, root);
}

}  // namespace berth::daemon::launch::child
