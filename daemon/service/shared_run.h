// Run sessions that share a container (daemon/shared/): whether a request
// shares, what shapes its container, and how the first process makes it.
//
// A shared container is made from the first process's prepared launch: its
// mount tree, namespaces and identity go to a holder (LaunchSpec::hold)
// with a private /tmp, /var/tmp and /dev/shm and an IPC namespace of its
// own, so the processes that join it share those and nobody else sees
// them (SysV segments a killed job leaves end with its container). The
// process itself then joins like every later one.
//
// Privilege: the daemon's (launching the holder).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "berth/v1/berth.pb.h"
#include "daemon/image/mount_cache.h"
#include "daemon/launch/launch.h"
#include "daemon/shared/container_registry.h"
#include "daemon/shared/share_key.h"

namespace berth::daemon {

shared::ShareRequest ShareRequestOf(const v1::RunRequest& request);

// The image and every option that shapes the container (not those of one
// process: arguments, environment, descriptors, working directory inside).
shared::ContainerShape ShapeOf(const v1::RunRequest& request, const image::MountLease& lease,
                               const launch::LaunchSpec& spec);

// The holder's spec: `spec`'s mount and namespace fields (moved out: what
// stays is the process's part), a private /tmp, /var/tmp and /dev/shm and an
// IPC namespace of its own.
launch::LaunchSpec HolderSpecOf(launch::LaunchSpec& spec);

// Launches the holder from `spec`'s mount and namespace fields (moved out:
// what stays is the process's part) and opens its namespaces.
absl::StatusOr<std::unique_ptr<shared::LiveContainer>> MakeLiveContainer(
    launch::LaunchSpec& spec, std::shared_ptr<image::MountLease> lease);

}  // namespace berth::daemon
