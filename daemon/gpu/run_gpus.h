// The GPU bind set in a run request's life (run/exec/shell today; builds
// and instances will call the same two functions): what the request asks
// for, and what a grant changes in the launch.
#pragma once

#include "berth/v1/berth.pb.h"
#include "daemon/gpu/gpu_grant.h"
#include "daemon/gpu/gpu_service.h"
#include "daemon/launch/launch.h"

namespace berth::daemon::gpu {

// --nv, --no-nv, --rocm, --device, --cdi-dirs and the environment of `r`.
GpuRequest GpuRequestOf(const v1::RunRequest& r);

// Moves the grant's devices, files and hooks into `spec`, and its extra
// groups (with their names from the host's group database, for the
// container's /etc/group) into the container's identity. Its environment
// goes through the action rules instead (EnvRequest::runtime_env).
void ApplyGrant(GpuGrant grant, launch::LaunchSpec& spec);

}  // namespace berth::daemon::gpu
