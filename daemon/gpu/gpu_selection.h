// Which GPUs a job may have, from the environment of its request, and what
// the container's CUDA_VISIBLE_DEVICES (or ROCR_VISIBLE_DEVICES) becomes.
//
// In order, the first that is set decides:
//   1. Slurm's allocation: SLURM_STEP_GPUS, then SLURM_JOB_GPUS (host GPU
//      numbers, "0,2" or ranges "0-3");
//   2. NVIDIA_VISIBLE_DEVICES then CUDA_VISIBLE_DEVICES (--nv), or
//      ROCR_VISIBLE_DEVICES (--rocm): numbers, NVIDIA's GPU-<uuid>, "all",
//      or "none"/"void"/"" for no GPU;
//   3. otherwise every GPU, less those the caller's device cgroup forbids
//      (decided by the launcher inside that cgroup).
// A restricted selection names host GPUs; inside, CUDA numbers only the
// devices it can open, so the variable is rewritten to 0..n-1 (as under
// Slurm's own device binding).
//
// Everything here comes from the client and is hostile: an unknown name,
// a GPU the node lacks or a malformed list is refused naming the variable.
// Asking for a GPU is not getting it: the launcher checks, inside the
// caller's cgroup, that each named GPU may be opened, and refuses the run
// otherwise.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/gpu/gpu_devices.h"

namespace berth::daemon::gpu {

struct GpuSelection {
  bool restricted = false;   // false: every GPU the caller's cgroup allows
  std::vector<int> indices;  // restricted: host GPU numbers, ascending
  std::string source;        // the variable that decided, for messages
  std::vector<std::pair<std::string, std::string>> env;  // set in the container
};

// `env` is the request's environment ("K=V"); `available` the node's GPU
// numbers; `uuids` maps NVIDIA GPU UUIDs to numbers.
absl::StatusOr<GpuSelection> SelectGpus(const std::vector<std::string>& env, Vendor vendor,
                                        const std::vector<int>& available,
                                        const std::map<std::string, int>& uuids);

}  // namespace berth::daemon::gpu
