// The container's first process: what it does, and the plan it follows.
//
// The child is a raw clone3() copy of one thread of a multi-threaded daemon.
// Other threads may have held glibc's malloc, stdio or locale locks at the
// moment of the clone, and glibc's per-thread data (the cached tid) is stale,
// so the child must not allocate, print, throw, or call anything that might
// (no std::string growth, no absl, no strerror/snprintf, no raise()). It only
// reads the ChildPlan the parent built and makes system calls. A failure is
// reported as one ChildMessage naming the step and errno; the parent turns it
// into an absl::Status.
//
// Order of the steps (child.cc), each named in its error message:
//   join cgroups → (the init's children list) → mount tree (child_rootfs.cc)
//   → pivot_root → descriptors → rlimits, affinity, umask → init
//   (child_init.cc) → identity (child_credentials.cc) → cwd → exec. With an
//   init the payload takes the caller's identity and enters the working
//   directory after the init forked it, and the init keeps an identity the
//   caller cannot signal (child_init.cc). A process joining a live
//   container enters its namespaces (child_join.cc) in place of the mount
//   tree and pivot_root.
// The working directory is entered after the identity switch, as the
// caller: it is a path the caller names, so it is walked with their rights.
// The cgroup join comes first so that everything the container allocates,
// its tmpfs pages included, is charged to the caller's cgroup.
//
// Privilege: runs with the daemon's privileges until the identity step;
// every step before it must only act on what the parent resolved or on
// paths resolved beneath the new root with RESOLVE_IN_ROOT.
#pragma once

#include <sched.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace berth::daemon::launch {

// Messages from the child (and the payload) to Launch(), over a
// SOCK_SEQPACKET socketpair whose child end is close-on-exec: end-of-file
// after kExecuting means the payload was exec'd.
struct ChildMessage {
  enum Kind : uint32_t {
    kFailed = 1,      // `text` names the step, `err` is its errno
    kNeedIdMaps = 2,  // the user namespace exists: parent writes uid/gid maps
    kExecuting = 3,   // the payload is about to execve
    kIdMapsDone = 4,  // parent → child: maps written
    // child → parent: hooks of stage `err` are next; send the OCI state
    // (before createContainer, the parent runs the createRuntime hooks)
    kHookState = 5,
    kHookStateReply = 6,  // parent → child: `text` is the state JSON
    // child → parent: a holder whose namespaces the parent opens now,
    // while it is still the daemon's uid and dumpable (LaunchSpec::hold)
    kHoldReady = 7,
    kHoldOpened = 8,  // parent → child: opened; go on
  };
  uint32_t kind = 0;
  int32_t err = 0;
  char text[504] = {};
};

// What the launcher sends the init to end the container (Container::Kill):
// the init kills the payload and every process left of it, then exits. Only
// the daemon's uid may signal the init (child_credentials.cc), and clients
// cannot forward real-time signals, so nobody else can send it.
inline constexpr int kEndContainerSignal = 64;  // SIGRTMAX

// One mount of the container's tree, attached in order beneath the new root.
struct MountStep {
  enum Kind : uint8_t {
    kAttach,  // move the detached mount `source_fd` (made by the parent) here
    kProcfs,  // a fresh procfs for the container's PID namespace
    // a clone of `source_path` on the session tmpfs, made by the child while
    // that tmpfs is attached in its namespace (the parent cannot clone from
    // a detached mount before Linux 6.15)
    kStagingClone,
    // no mount: only the device check below, on the node `destination`
    // beneath `base_fd` (a node the parent made in a /dev of ours)
    kDeviceCheck,
  };
  Kind kind = kAttach;
  int source_fd = -1;
  // The directory `destination` is resolved beneath (an attached mount's
  // fd); -1 means the new root. Resolution is always RESOLVE_IN_ROOT with no
  // magic links, so a symlink planted in the image stays inside the root.
  int base_fd = -1;
  std::string destination;  // relative, lexically clean, never empty
  std::string what;         // "mounting /home/alice", for the error message
  std::string source_path;  // kStagingClone: "staging/...", relative to the session
  // A device node (GPU, CDI): the access (R_OK | W_OK) the caller's device
  // cgroup must grant, checked with faccessat2 once the child is in the
  // caller's cgroups; 0 for other mounts. When it is refused, an optional
  // node is left out (its placeholder beneath `base_fd` removed) and a
  // required one fails the launch.
  int device_access = 0;
  bool device_optional = false;
  // The destination lies below a host tree attached earlier (a bind, $HOME,
  // /tmp): it is resolved with the caller's filesystem identity, so that a
  // mount cannot tell whether a name exists below a host directory the
  // caller may not search.
  bool resolve_as_caller = false;
};

// An OCI hook the child runs (createContainer before pivot_root with the
// daemon's privileges, startContainer after the identity switch), through
// RunHookProcess (hook_exec.h).
struct ChildHook {
  int stage = 0;       // HookSpec::Stage
  int binary_fd = -1;  // opened by the daemon; -1: exec `path` in the container
  std::string path;
  std::string what;                     // "createContainer hook /usr/bin/x"
  std::vector<const char*> argv, envp;  // null-terminated, into LaunchSpec
  int timeout_ms = 30000;
};

struct FdPlacement {
  int source = -1;  // a descriptor of the daemon
  int target = -1;  // its number in the container
};

struct ChildPlan {
  // --- namespaces
  uint64_t clone_flags = 0;
  bool pid_namespace = false;
  std::string hostname;      // empty: unchanged
  bool loopback_up = false;  // a new network namespace: bring "lo" up
  int netns_fd = -1;         // an existing network namespace to enter first

  // --- control
  int channel_fd = -1;  // child end of the message socketpair
  int status_fd = -1;   // write end of the payload-status pipe (init only)
  // The init's /proc/thread-self/children, opened before pivot_root, when
  // there is no PID namespace to end the container's processes with it.
  int children_fd = -1;
  int channel_target = -1;  // numbers both are moved to before fds are placed
  int status_target = -1;

  // --- cgroups: the cgroup v2 directory the child is created in
  // (CLONE_INTO_CGROUP: no migration, no RCU grace period), or -1; and
  // cgroup.procs descriptors of the v1 hierarchies it must move into. The
  // child writes "0" (itself) to each, so no path is resolved in the child.
  int clone_into_cgroup_fd = -1;
  std::vector<int> cgroup_procs_fds;
  std::vector<std::string> cgroup_what;

  // --- root filesystem
  int session_fd = -1;  // detached session tmpfs (staging layer, upper/work)
  // The root is either an overlay (overlay_options set: --writable-tmpfs, or a
  // tree too costly to underlay) or a bind root (prepare_bind_root.cc): the
  // detached image clone `root_fd`, or, with root_from_staging, a clone of
  // the session's staging directory.
  std::vector<std::pair<std::string, std::string>> overlay_options;  // ("", "") ends flags
  int root_fd = -1;
  bool root_from_staging = false;
  uint64_t overlay_attr = 0;  // MOUNT_ATTR_*
  std::string session_path;   // "/proc/self/fd/N" of session_fd, for umount
  // -o/--overlay: detached trees (opened with the caller's rights) the child
  // attaches at these directories of the session tmpfs before the overlay
  // is made.
  std::vector<std::pair<int, std::string>> overlay_trees;
  // The upper layer is the caller's directory: the overlay is made by a
  // helper of the caller's ids in a user namespace mapped by uid_map and
  // gid_map (its creator's credentials are what overlayfs writes the upper
  // layer with), its layers named relative to the session tmpfs.
  bool overlay_as_caller = false;
  std::vector<MountStep> mounts;
  std::string cwd;  // absolute, clean, not under /proc

  // --- process attributes
  std::vector<FdPlacement> fds;
  std::vector<int> fd_scratch;  // one slot per fds entry, written by the child
  int max_target = -1;
  int controlling_tty = -1;
  std::vector<std::pair<int, rlimit>> rlimits;
  std::vector<std::string> rlimit_what;
  bool set_affinity = false;
  cpu_set_t affinity{};
  bool set_umask = false;
  mode_t umask = 022;

  // --- identity
  bool user_namespace = false;
  bool fakeroot = false;
  // Set by the child: a holder's init that entered the container's user
  // namespace itself (EnterHolderUserNamespace) takes the inside ids.
  bool init_in_user_namespace = false;
  bool can_setgroups = true;  // false in a user namespace with setgroups denied
  uid_t uid = 0;              // the caller, in the daemon's user namespace
  gid_t gid = 0;
  std::vector<gid_t> groups;
  uid_t inside_uid = 0;  // the ids to switch to (differ from uid/gid with fakeroot)
  gid_t inside_gid = 0;
  // Written by the parent (Launch) for the container's user namespace; the
  // child writes them for the overlay helper's (overlay_as_caller): the
  // maps (id_maps.h) and whether setgroups is denied in it.
  std::string uid_map;
  std::string gid_map;
  bool deny_setgroups = true;
  int last_cap = 40;  // /proc/sys/kernel/cap_last_cap

  // --- joining a live container (launch.h Join) instead of building one:
  // its namespaces, entered with setns() after the cgroups; -1 for those it
  // does not have. The user namespace is entered last (DropPrivileges),
  // after the supplementary groups and limits that need the daemon's rights.
  bool join = false;
  int join_ipc_fd = -1;
  int join_uts_fd = -1;
  int join_net_fd = -1;
  int join_pid_fd = -1;
  int join_mnt_fd = -1;
  int join_user_fd = -1;
  // --- hooks: the child asks the parent for the state before each stage
  std::vector<ChildHook> hooks;
  bool ask_before_pivot = false;  // createRuntime or createContainer hooks exist
  int hook_output_fd = -1;        // the caller's stderr, for hooks before pivot_root

  // --- payload
  // hold: the init runs no payload and only keeps the container's
  // namespaces alive for the processes that join it (LaunchSpec::hold).
  bool hold = false;
  bool run_init = false;
  std::vector<std::string> exec_candidates;  // paths to try in order
  std::string exec_what;                     // "exec <argv0>"
  std::vector<const char*> argv;             // null-terminated, into LaunchSpec
  std::vector<const char*> envp;             // null-terminated
};

// The body of the cloned child. Never returns.
[[noreturn]] void ChildMain(ChildPlan& plan);

}  // namespace berth::daemon::launch
