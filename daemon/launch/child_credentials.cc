// The payload becomes the caller: supplementary groups, gid, uid, then no
// capabilities at all, no_new_privs and non-dumpable. The init becomes a
// process the caller cannot signal but that can signal the caller's
// processes (DropInitPrivileges). Rules: child.h.
//
// Every credential call is the raw system call. glibc's setgroups/setres*id
// would broadcast the change to the "other threads" it believes this process
// still has (a copy of the daemon's thread list), signalling stale tids and
// waiting for answers that never come.
//
// With a user namespace (--userns, --fakeroot) the namespace is created here,
// after the mount tree, while the child is still the daemon's uid: the new
// namespace is then owned by the daemon, so neither the caller outside nor
// the container inside owns it. The parent, which has CAP_SETUID/CAP_SETGID
// over the daemon's namespace, writes the single-id maps (inside id → the
// caller's id) and denies setgroups; the child waits for it.
#include <linux/capability.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "daemon/launch/child_internal.h"

namespace berth::daemon::launch::child {
namespace {

// Why: the daemon's own groups must not reach the container, and group
// permissions (including deny-by-group) must be the caller's.
void SetSupplementaryGroups(const ChildPlan& plan) {
  // A user namespace with setgroups denied (user mode) keeps the groups the
  // daemon's user already has, which are the caller's own.
  if (!plan.can_setgroups) return;
  if (syscall(SYS_setgroups, plan.groups.size(), plan.groups.data()) != 0) {
    Fail(plan, "setting the supplementary groups", nullptr, errno);
  }
}

void EnterUserNamespace(const ChildPlan& plan) {
  const char* what = "creating the user namespace";
  // The parent opens /proc/<pid>/uid_map; in user mode the daemon only owns
  // that file while the child is dumpable. The child is still the daemon's
  // uid here, so this exposes nothing of the daemon to the caller.
  if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) Fail(plan, what, "PR_SET_DUMPABLE", errno);
  int flags = CLONE_NEWUSER | (plan.fakeroot ? CLONE_NEWNS : 0);
  if (unshare(flags) != 0) Fail(plan, what, nullptr, errno);
  Send(plan, ChildMessage::kNeedIdMaps);
  ChildMessage reply;
  ssize_t n = recv(plan.channel_fd, &reply, sizeof(reply), 0);
  if (n != static_cast<ssize_t>(sizeof(reply)) || reply.kind != ChildMessage::kIdMapsDone) {
    Fail(plan, what, "no id maps from the launcher", n < 0 ? errno : EPROTO);
  }
}

// A live container's user namespace (launch.h Join), after the mount and
// other namespaces, which the daemon's rights in its own namespace reach.
void JoinUserNamespace(const ChildPlan& plan) {
  if (setns(plan.join_user_fd, CLONE_NEWUSER) != 0) {
    Fail(plan, "entering the container's user namespace", nullptr, errno);
  }
  close(plan.join_user_fd);
}

// Needs CAP_SETPCAP, so it comes before the uid switch (or, in a new user
// namespace, after creating it: unshare grants a full bounding set there).
void DropBoundingSet(const ChildPlan& plan) {
  for (int cap = 0; cap <= plan.last_cap; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      Fail(plan, "dropping the capability bounding set", nullptr, errno);
    }
  }
}

// Why: from here on the kernel checks the caller's own permissions (or, with
// fakeroot, those of root in a namespace that maps only the caller).
void SwitchIds(const ChildPlan& plan) {
  gid_t g = plan.inside_gid;
  uid_t u = plan.inside_uid;
  if (syscall(SYS_setresgid, g, g, g) != 0)
    Fail(plan, "switching to the caller's gid", nullptr, errno);
  if (syscall(SYS_setresuid, u, u, u) != 0)
    Fail(plan, "switching to the caller's uid", nullptr, errno);
}

void ClearCapabilities(const ChildPlan& plan) {
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    Fail(plan, "clearing ambient capabilities", nullptr, errno);
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capset, &header, data) != 0) Fail(plan, "dropping capabilities", nullptr, errno);
}

void VerifyNoCapabilities(const ChildPlan& plan, const char* what) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) Fail(plan, what, "capget", errno);
  for (const auto& d : data) {
    if (d.effective != 0 || d.permitted != 0 || d.inheritable != 0) {
      Fail(plan, what, "capabilities remain", EPERM);
    }
  }
  for (int cap = 0; cap <= plan.last_cap; ++cap) {
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
      Fail(plan, what, "bounding set not empty", EPERM);
  }
}

// Asserts the result instead of trusting the calls (CVE-2023-38496).
void VerifyIdentity(const ChildPlan& plan) {
  const char* what = "verifying the dropped privileges";
  uid_t r, e, s;
  gid_t rg, eg, sg;
  if (syscall(SYS_getresuid, &r, &e, &s) != 0 || syscall(SYS_getresgid, &rg, &eg, &sg) != 0) {
    Fail(plan, what, nullptr, errno);
  }
  if (r != plan.inside_uid || e != plan.inside_uid || s != plan.inside_uid ||
      rg != plan.inside_gid || eg != plan.inside_gid || sg != plan.inside_gid) {
    Fail(plan, what, "uid/gid not switched", EPERM);
  }
  if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) Fail(plan, what, "no_new_privs unset", EPERM);
  if (plan.fakeroot) return;  // root of its own user namespace by design
  VerifyNoCapabilities(plan, what);
}

// The init's ids: real and saved uid stay the daemon's, the effective uid is
// the caller's. The kernel lets a process signal another when its real or
// effective uid is the target's real or saved uid: the init may signal the
// caller's processes (its effective uid is theirs), while none of them may
// signal, ptrace or prlimit the init (its real and saved uid are not the
// caller's). No capability is kept. A holder in a user namespace of its own
// (EnterHolderUserNamespace) names the caller by the inside ids, which map
// to the same ids outside; its groups are already gone.
void SwitchInitIds(const ChildPlan& plan) {
  const char* what = "giving the init its identity";
  bool inside = plan.init_in_user_namespace;
  if (!inside && plan.can_setgroups && syscall(SYS_setgroups, 0, nullptr) != 0)
    Fail(plan, what, nullptr, errno);
  gid_t g = inside ? plan.inside_gid : plan.gid;
  uid_t u = inside ? plan.inside_uid : plan.uid;
  if (syscall(SYS_setresgid, g, g, g) != 0) Fail(plan, what, "gid", errno);
  if (syscall(SYS_setresuid, -1, u, -1) != 0) Fail(plan, what, "uid", errno);
}

}  // namespace

void EnterHolderUserNamespace(ChildPlan& plan) {
  // Dropped while the holder still may: in the new namespace setgroups is
  // usually denied, and the init keeps none of the daemon's groups.
  if (plan.can_setgroups && syscall(SYS_setgroups, 0, nullptr) != 0) {
    Fail(plan, "giving the init its identity", "setgroups", errno);
  }
  EnterUserNamespace(plan);
  plan.init_in_user_namespace = true;
}

void DropInitPrivileges(ChildPlan& plan) {
  DropBoundingSet(plan);
  SwitchInitIds(plan);
  ClearCapabilities(plan);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    Fail(plan, "setting no_new_privs", nullptr, errno);
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) Fail(plan, "setting non-dumpable", nullptr, errno);
  uid_t r, e, s;
  uid_t want = plan.init_in_user_namespace ? plan.inside_uid : plan.uid;
  if (syscall(SYS_getresuid, &r, &e, &s) != 0 || e != want) {
    Fail(plan, "verifying the init's identity", "uid not switched", EPERM);
  }
  VerifyNoCapabilities(plan, "verifying the init's identity");
}

void DropPrivileges(ChildPlan& plan) {
  SetSupplementaryGroups(plan);
  if (plan.join_user_fd >= 0) {
    JoinUserNamespace(plan);
  } else if (plan.user_namespace) {
    EnterUserNamespace(plan);
  }
  if (!plan.fakeroot) DropBoundingSet(plan);
  SwitchIds(plan);
  if (!plan.fakeroot) ClearCapabilities(plan);
  // Setuid binaries, file capabilities and LSM transitions can no longer
  // raise privileges, whatever the image contains.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    Fail(plan, "setting no_new_privs", nullptr, errno);
  // Vforked, the payload shares the init's mm (a copy of the daemon's) until
  // execve: no process of the caller may ptrace it or open /proc/1/{mem,exe,fd}.
  // execve() makes the payload dumpable again, with only its own memory.
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) Fail(plan, "setting non-dumpable", nullptr, errno);
  VerifyIdentity(plan);
}

}  // namespace berth::daemon::launch::child
