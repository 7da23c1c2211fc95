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
//                             by a helper of the caller's ids in a user
//                             namespace of its own (OverlayHelper)
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
// Privilege: the daemon's (CAP_SYS_ADMIN over the new mount namespace);
// the overlay helper drops to the caller's ids in a user namespace of its
// own before it makes the overlay of a caller's upper directory.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

// The overlay's fsopen/fsconfig/fsmount, with the options of the plan.
int MakeOverlay(const ChildPlan& plan, const char* what) {
  int fs = fsopen("overlay", FSOPEN_CLOEXEC);
  if (fs < 0) Fail(plan, what, "fsopen", errno);
  for (const auto& [key, value] : plan.overlay_options) {
    int rc = value.empty() ? fsconfig(fs, FSCONFIG_SET_FLAG, key.c_str(), nullptr, 0)
                           : fsconfig(fs, FSCONFIG_SET_STRING, key.c_str(), value.c_str(), 0);
    if (rc != 0) FailFs(plan, what, fs, errno);
  }
  if (fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) FailFs(plan, what, fs, errno);
  int root = fsmount(fs, FSMOUNT_CLOEXEC, static_cast<unsigned>(plan.overlay_attr));
  if (root < 0) FailFs(plan, what, fs, errno);
  close(fs);
  return root;
}

// "<pid>/<file>" without allocating.
void ProcPath(char* out, size_t size, long pid, const char* file) {
  char digits[24];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + pid % 10);
    pid /= 10;
  } while (pid > 0 && n < sizeof(digits));
  size_t len = 0;
  while (n > 0 && len + 1 < size) out[len++] = digits[--n];
  for (const char* c = file; *c != '\0' && len + 1 < size; ++c) out[len++] = *c;
  out[len] = '\0';
}

void WriteIdMap(const ChildPlan& plan, int procfs, long pid, const char* file,
                const std::string& map) {
  const char* what = "mapping the overlay's user namespace";
  char path[64];
  ProcPath(path, sizeof(path), pid, file);
  int fd = openat(procfs, path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) Fail(plan, what, file, errno);
  if (write(fd, map.data(), map.size()) != static_cast<ssize_t>(map.size())) {
    Fail(plan, what, file, errno);
  }
  close(fd);
}

// One descriptor over a socketpair, as one byte with SCM_RIGHTS, without
// allocating (these run in the launcher's child and the overlay helper).
// common/fd_handoff is the client connection's preamble and allocates.
bool SendOneFd(int sock, int fd) {
  char byte = 0;
  char control[CMSG_SPACE(sizeof(int))] = {};
  iovec iov{&byte, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  __builtin_memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1;
}

// The descriptor SendOneFd sent (close-on-exec), or -1.
int ReceiveOneFd(int sock) {
  char byte = 0;
  char control[CMSG_SPACE(sizeof(int))] = {};
  iovec iov{&byte, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1) return -1;
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  if (cmsg == nullptr || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) {
    return -1;
  }
  int fd = -1;
  __builtin_memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
  return fd;
}

// The helper: a process of the caller's ids in a user namespace of its own
// (owned by root, mapped like the container's: the caller's uid and gid, and
// with --fakeroot their subordinate ranges), and a copy of our mount
// namespace, entered with the session tmpfs as its working directory so the
// layers are found there by relative paths. overlayfs keeps its creator's
// credentials and does every upper-layer operation with them (copy-up,
// whiteouts, its mode-0 work/work): a creator in such a namespace has its
// capabilities only over inodes of the mapped ids, the caller's own, so the
// overlay can neither make a root-owned file in the caller's directory nor
// read a lower directory the caller may not. It sends the overlay back
// detached and exits. A failure is reported on the channel as the child's.
[[noreturn]] void OverlayHelper(const ChildPlan& plan, int sock) {
  const char* what = "creating the overlay as the caller";
  if (plan.can_setgroups && syscall(SYS_setgroups, plan.groups.size(), plan.groups.data()) != 0) {
    Fail(plan, what, "setgroups", errno);
  }
  // Rooted at the session tmpfs, the top of the mounts stacked on "/":
  // unshare(CLONE_NEWUSER) refuses a process whose root is below that.
  if (fchdir(plan.session_fd) != 0 || chroot(".") != 0) {
    Fail(plan, what, "entering the session", errno);
  }
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) Fail(plan, what, "unshare", errno);
  char byte = 0;
  if (send(sock, &byte, 1, MSG_NOSIGNAL) != 1 || recv(sock, &byte, 1, 0) != 1) {
    Fail(plan, what, "waiting for the id maps", errno);
  }
  if (syscall(SYS_setresgid, plan.inside_gid, plan.inside_gid, plan.inside_gid) != 0 ||
      syscall(SYS_setresuid, plan.inside_uid, plan.inside_uid, plan.inside_uid) != 0) {
    Fail(plan, what, "taking the caller's ids", errno);
  }
  int root = MakeOverlay(plan, what);
  if (!SendOneFd(sock, root)) Fail(plan, what, "sending the overlay", errno);
  _exit(0);
}

// Runs OverlayHelper, writes its id maps (through a procfs of our PID
// namespace, where the pid fork returned is valid) and takes the overlay.
int MakeOverlayAsCaller(const ChildPlan& plan) {
  const char* what = "creating the overlay as the caller";
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    Fail(plan, what, "socketpair", errno);
  }
  long pid = syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) Fail(plan, what, "fork", errno);
  if (pid == 0) {
    close(pair[0]);
    OverlayHelper(plan, pair[1]);
  }
  close(pair[1]);
  char byte = 0;
  int root = -1;
  if (recv(pair[0], &byte, 1, 0) == 1) {
    int procfs_ctx = fsopen("proc", FSOPEN_CLOEXEC);
    if (procfs_ctx < 0) Fail(plan, what, "fsopen proc", errno);
    if (fsconfig(procfs_ctx, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
      FailFs(plan, what, procfs_ctx, errno);
    }
    int procfs = fsmount(procfs_ctx, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    if (procfs < 0) FailFs(plan, what, procfs_ctx, errno);
    close(procfs_ctx);
    WriteIdMap(plan, procfs, pid, "/uid_map", plan.uid_map);
    WriteIdMap(plan, procfs, pid, "/gid_map", plan.gid_map);
    close(procfs);
    if (send(pair[0], &byte, 1, MSG_NOSIGNAL) != 1) Fail(plan, what, "resuming it", errno);
    root = ReceiveOneFd(pair[0]);
  }
  close(pair[0]);
  int status = 0;
  while (wait4(static_cast<pid_t>(pid), &status, __WALL, nullptr) < 0) {
    if (errno != EINTR) Fail(plan, what, "waiting for it", errno);
  }
  // The helper reported its own failure on the channel.
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) _exit(kFailedExit);
  if (root < 0) Fail(plan, what, "no overlay came back", EPROTO);
  return root;
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
  int root =
      plan.overlay_as_caller && plan.uid != 0 ? MakeOverlayAsCaller(plan) : MakeOverlay(plan, what);
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
