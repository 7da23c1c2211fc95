// What a container inherits from the process that asked for it, so that it
// behaves as if that process had exec'd it (Slurm runs `berth exec` as the
// task): the caller's cgroups, CPU affinity and resource limits.
//
// Everything is read through the caller's pidfd-pinned process while it is
// blocked in its Run call; the pidfd is checked again after reading so that a
// recycled pid can never lend its cgroup or limits to someone else.
//
// Privilege: reads /proc/<pid> and prlimit(2) as root (system mode).
#pragma once

#include <sched.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::daemon {

struct CallerProcess {
  // Absolute cgroup directories, one per hierarchy the caller is in (v1
  // controllers and the v2 unified one), under /sys/fs/cgroup, except those
  // the daemon's thread (and so a child it clones) is in already.
  std::vector<std::string> cgroup_dirs;
  cpu_set_t affinity;
  std::vector<std::pair<int, rlimit>> rlimits;
};

// Reads the state of process `pid`, which `pidfd` refers to.
absl::StatusOr<CallerProcess> ReadCallerProcess(pid_t pid, int pidfd);

}  // namespace berth::daemon
