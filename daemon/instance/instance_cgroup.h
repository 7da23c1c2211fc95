// An instance's own cgroup, made below the daemon's own cgroup (never the
// caller's: a login session's scope ends with the session, and the
// instance must not), in every hierarchy that counts (cgroup v2, and each
// v1 hierarchy of cpu/cpuacct, memory, pids, blkio), so that `instance
// stats` reads the instance alone and its limits apply to it alone.
//
// The daemon's own cgroup is read from /proc/self/cgroup at each start. On
// cgroup v2, enabling controllers for children needs the daemon's cgroup
// to hold no process: ContainerCgroup moves the daemon into a leaf
// (<own>/berth-caller) first, as systemd's delegation expects.
//
// The caller's own limits are read at start (cgroup/ceiling.h) and copied
// into the instance's, lowering what the request asks for: a limit can only
// tighten what the caller already has.
//
// A daemon whose cgroup is not delegated to it (a user-mode berthd without
// systemd's delegation) cannot make one: an instance without limits then
// runs in the daemon's cgroup, and its stats say so (Where::kDaemon);
// an instance with limits is refused with the controller named.
//
// Privilege: the daemon's (mkdir and writes in cgroupfs).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/cgroup/ceiling.h"
#include "daemon/cgroup/container_cgroup.h"
#include "daemon/cgroup/resources.h"
#include "daemon/launch/cgroups.h"

namespace berth::daemon::instance {

// The daemon's own cgroups (/proc/self/cgroup), where instances go.
absl::StatusOr<std::vector<launch::CgroupHierarchy>> DaemonCgroups();

// The instance's cgroup below `daemon` (DaemonCgroups()), with `limits`
// applied.
absl::StatusOr<cgroup::ContainerCgroup> MakeInstanceCgroup(
    const std::vector<launch::CgroupHierarchy>& daemon, uid_t uid, const std::string& name,
    const cgroup::Resources& limits);

// Whether `pid` is in each of `made`'s directories (adoption: a record's
// cgroup is believed only when the proven init is in it).
bool InCgroups(pid_t pid, const std::vector<cgroup::ContainerCgroup::Made>& made);

}  // namespace berth::daemon::instance
