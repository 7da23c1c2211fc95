// The GPU device nodes of a driver root's /dev, sorted into the control
// nodes every GPU job needs and the per-GPU nodes a job may or may not get.
//   NVIDIA: control nvidiactl, nvidia-uvm, nvidia-uvm-tools, nvidia-modeset
//           and nvidia-caps/* (MIG capabilities); GPU N is /dev/nvidiaN.
//   AMD:    control /dev/kfd; GPU N is the N-th /dev/dri/renderD* node by
//           minor number (ROCm's enumeration order on a node with one kind
//           of GPU); the display nodes /dev/dri/card* come only with all GPUs.
// Only character devices count: a symlink or a regular file named nvidia0 is
// left out, so nothing a fake root or a broken host holds becomes a bind of
// something else.
//
// Also: the GPU UUIDs the NVIDIA driver reports in
// /proc/driver/nvidia/gpus/*/information, so CUDA_VISIBLE_DEVICES=GPU-... can
// name a GPU.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "daemon/gpu/driver_root.h"

namespace berth::daemon::gpu {

enum class Vendor { kNvidia, kAmd };

struct GpuNode {
  std::string path;  // "/dev/nvidia0", in the container and beneath the root
  int index = -1;    // the GPU's number; -1 for a control node
  UniqueFd fd;       // O_PATH of the node, checked to be a character device
};

struct GpuNodes {
  std::vector<GpuNode> control;
  std::vector<GpuNode> gpus;           // sorted by index
  std::vector<GpuNode> all_gpus_only;  // AMD's card* nodes
};

absl::StatusOr<GpuNodes> ScanGpuNodes(const DriverRoot& root, Vendor vendor);

// "GPU-8c9a..." → device minor, from the NVIDIA driver's /proc files under
// the root; empty when the driver exposes none.
std::map<std::string, int> ReadNvidiaUuids(const DriverRoot& root);

}  // namespace berth::daemon::gpu
