// The findings of `berth doctor` that any user can make from /proc, /sys and
// /dev without the daemon: the kernel features berth builds on (user
// namespaces, overlayfs, squashfs, FUSE, cgroups and the controllers this
// process's cgroup may use, loop devices) and whether Slurm on this node
// loads berth's plugin. What only the daemon can try (mounting squashfs with
// each compressor, its config, its stores) comes from the Doctor RPC.
#pragma once

#include <string>
#include <vector>

#include "berth/v1/berth.pb.h"

namespace berth::client::doctor {

// Where the checks read; tests point them at a prepared tree.
struct HostPaths {
  std::string proc = "/proc";
  std::string sys = "/sys";
  std::string dev = "/dev";
  std::string slurm_conf_dir = "/etc/slurm";
};

std::vector<v1::DoctorCheck> KernelChecks(const HostPaths& paths);

v1::DoctorCheck SlurmCheck(const HostPaths& paths);

}  // namespace berth::client::doctor
