// The parent's half of a launch: turning a LaunchSpec into a ChildPlan and
// the descriptors it names, before clone3().
//
// Everything that can fail, allocate or take a lock happens here, in the
// daemon's thread, with absl::Status errors: validating the request, reading
// the image's /etc files, building the session tmpfs (staging layer with the
// missing mount points and the generated /etc/passwd and /etc/group, the
// writable upper layer), cloning every bind source and host path as a
// detached mount with its final attributes (ro, nosuid, nodev, slave
// propagation), checking the host device nodes for a minimal /dev, and
// opening the cgroup.procs files. The child then only attaches.
//
// Privilege: runs as the daemon, with its full privileges, on the calling
// thread. It never mounts anything in the daemon's own mount namespace.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "daemon/launch/child.h"
#include "daemon/launch/launch.h"
#include "daemon/launch/launch_hooks.h"

namespace berth::daemon::launch {

struct PreparedLaunch {
  ChildPlan plan;
  UniqueFd image_fd;            // O_PATH of image_root, for resolving inside the image
  UniqueFd session_fd;          // the detached session tmpfs
  UniqueFd channel_parent;      // Launch()'s end of the control socketpair
  UniqueFd channel_child;       // the child's end (plan.channel_fd)
  UniqueFd status_read;         // payload wait status from the init
  UniqueFd status_write;        // the init's end (plan.status_fd)
  std::vector<UniqueFd> owned;  // detached mounts, cgroup.procs: closed after clone
  HostHooks hooks;              // the OCI hooks the daemon runs itself
  bool writable_root = false;   // LaunchSpec::writable_root
  // A holder's namespaces, opened while it waits for them (kHoldReady).
  LiveNamespaces held;
  // The user namespace every clone of the image is idmapped with
  // (image_idmap.h); invalid: the image's clones show its host owners.
  UniqueFd image_idmap;
};

// Builds the plan for `spec`. `spec` must outlive the result: the plan's
// argv/envp point into it.
absl::StatusOr<std::unique_ptr<PreparedLaunch>> PrepareLaunch(LaunchSpec& spec);

// The plan of a process joining a live container (launch.h Join): no root
// filesystem, the namespaces' descriptors instead (borrowed: `ns` must
// outlive the clone).
absl::StatusOr<std::unique_ptr<PreparedLaunch>> PrepareJoin(LaunchSpec& spec,
                                                            const LiveNamespaces& ns);

// prepare_mounts.cc: the MountSteps of the container's tree, in order, with
// their mount points staged. Needs image_fd and the staging directory.
absl::Status PlanMounts(LaunchSpec& spec, int staging_fd, PreparedLaunch& prepared);

// prepare_bind_root.cc: plans "/" as the image's own mount plus binds where
// the staging tree adds or shadows something. False (nothing changed) when
// the tree would need too many binds: the caller uses the overlay root.
absl::StatusOr<bool> PlanBindRoot(int staging_fd, PreparedLaunch& prepared);

// Facts about the daemon's own namespaces, read once.
struct HostFacts {
  bool initial_user_namespace = true;  // false in user mode
  bool can_setgroups = true;           // /proc/self/setgroups is "allow"
  int last_cap = 40;
};
const HostFacts& GetHostFacts();

}  // namespace berth::daemon::launch
