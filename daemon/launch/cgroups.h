// Which cgroup directories a process lives in, so that its container can
// join the very same cgroups (Slurm accounting, limits and `scancel` then
// cover the container as they cover the client).
//
// Every hierarchy counts: the cgroup2 unified one and, on v1 or hybrid
// hosts, each v1 hierarchy (cpu, memory, cpuset, name=systemd, ...). Paths
// come from /proc/<pid>/cgroup mapped through this mount namespace's
// mountinfo, so nothing the client sends is trusted.
//
// Privilege: reads /proc; no privilege needed. Joining (writing to
// cgroup.procs) happens in the container's child with the daemon's
// credentials, through descriptors the launcher opens.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::daemon::launch {

// The cgroup directories of `pid` (as seen by this process), one per
// hierarchy that is mounted here.
absl::StatusOr<std::vector<std::string>> CgroupDirsOf(pid_t pid);

// One hierarchy's directory of a process and what the hierarchy is: cgroup
// v2, or a v1 hierarchy and its controllers ("cpu", "memory", ...; named
// hierarchies such as name=systemd have none).
struct CgroupHierarchy {
  std::string dir;
  bool v2 = false;
  std::vector<std::string> controllers;  // v1 only
};
absl::StatusOr<std::vector<CgroupHierarchy>> CgroupHierarchiesOf(pid_t pid);
absl::StatusOr<std::vector<CgroupHierarchy>> CgroupHierarchiesFrom(absl::string_view proc_cgroup,
                                                                   absl::string_view mountinfo);

// The cgroup directories of `pid` that a child cloned by the calling thread
// would not already be in (cgroup v1 places threads, not processes): what a
// container must join. Joining costs the child a grace period per write
// (bench/cgroup_join.sh), and the caller often shares the daemon's cgroups.
// mountinfo is read once for both sides, and only when some hierarchy differs.
absl::StatusOr<std::vector<std::string>> CgroupDirsToJoin(pid_t pid);

// The same from /proc/<pid>/cgroup (`theirs`) and /proc/thread-self/cgroup
// (`ours`), for tests; `read_mountinfo` is called only when needed.
absl::StatusOr<std::vector<std::string>> CgroupDirsToJoinFrom(
    absl::string_view theirs, absl::string_view ours,
    const std::function<absl::StatusOr<std::string>()>& read_mountinfo);

// The same from the file contents, for tests: `proc_cgroup` is
// /proc/<pid>/cgroup, `mountinfo` is /proc/self/mountinfo.
absl::StatusOr<std::vector<std::string>> CgroupDirsFrom(absl::string_view proc_cgroup,
                                                        absl::string_view mountinfo);

}  // namespace berth::daemon::launch
