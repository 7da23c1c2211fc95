// The cgroup limit flags of run/exec/shell (Apptainer's names and
// environment forms): --cpus, --cpu-shares, --cpuset-cpus, --cpuset-mems,
// --memory, --memory-reservation, --memory-swap, --oom-kill-disable,
// --pids-limit, --blkio-weight, --blkio-weight-device and --apply-cgroups
// FILE, turned into the request's Resources. Files and device paths are
// read here, as the caller; the daemon checks every value again.
#pragma once

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "berth/v1/berth.pb.h"

namespace berth::client {

struct LimitFlags {
  std::string cpus, cpu_shares, cpuset_cpus, cpuset_mems;
  std::string memory, memory_reservation, memory_swap;
  bool oom_kill_disable = false;
  std::string pids_limit, blkio_weight;
  std::vector<std::string> blkio_weight_device;
  std::string apply_cgroups;
};

void AddLimitFlags(CLI::App& cmd, LimitFlags& flags);
absl::Status ApplyLimitEnvironment(const CLI::App& cmd, LimitFlags& flags);

// Fills request.resources (left unset without any limit); `cwd` resolves a
// relative --apply-cgroups path.
absl::Status AddLimits(const LimitFlags& flags, const std::string& cwd, v1::RunRequest& request);

// docker's RAMInBytes, which Apptainer uses: "512", "64k", "64M", "1.5g",
// "2GiB", "2 GB" (binary multiples, case-insensitive).
absl::StatusOr<int64_t> ParseRamSize(absl::string_view text);

}  // namespace berth::client
