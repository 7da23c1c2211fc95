// The request's cgroup limits (--cpus, --memory, ..., --apply-cgroups) made
// into the container's own cgroup below the caller's (daemon/cgroup/), and
// put in place of the caller's cgroups the container joins.
//
// Privilege: the daemon's; the caller's cgroups are read from the kernel,
// never taken from the request.
#pragma once

#include <sys/types.h>

#include <optional>

#include "absl/status/statusor.h"
#include "berth/v1/berth.pb.h"
#include "daemon/cgroup/container_cgroup.h"
#include "daemon/cgroup/resources.h"

namespace berth::daemon {

// The request's limits, checked (cgroup::Validate).
absl::StatusOr<cgroup::Resources> ResourcesOf(const v1::Resources& r);

// The container's cgroup for a request with limits (nullopt without any),
// made below the cgroups of `caller_pid` (`caller_pidfd` proves it was
// still the caller once they were read); `join` (the directories the
// container joins) then names the container's instead of the caller's.
absl::StatusOr<std::optional<cgroup::ContainerCgroup>> MakeRunCgroup(
    const v1::RunRequest& r, pid_t caller_pid, int caller_pidfd, std::vector<std::string>& join);

}  // namespace berth::daemon
