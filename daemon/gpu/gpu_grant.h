// The "GPU bind set" of one container: what --nv, --rocm and CDI devices
// add to it, computed by the daemon (gpu_service.h) from the host's driver
// files, the node's devices, the site's CDI specs and the request, and
// applied by the launcher (LaunchSpec::devices) and the environment rules
// (daemon/action). run/exec/shell use it today; builds and instances call
// the same GpuService::Prepare.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "daemon/launch/launch.h"

namespace berth::daemon::gpu {

struct GpuGrant {
  launch::DeviceSet devices;
  // Supplementary groups the container gets (CDI additionalGids).
  std::vector<gid_t> extra_groups;
  // Set in the container after every other rule, so they always hold:
  // CUDA_VISIBLE_DEVICES=0..n-1, CDI env edits.
  std::vector<std::pair<std::string, std::string>> env;
  // Driver libraries were bound: /.singularity.d/libs joins LD_LIBRARY_PATH.
  bool library_path = false;

  bool empty() const { return devices.empty() && extra_groups.empty() && env.empty(); }
};

}  // namespace berth::daemon::gpu
