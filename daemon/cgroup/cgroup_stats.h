// What a cgroup has used, read from its own counters (cgroup v2 files or
// the v1 hierarchies' ones): what `berth instance stats` shows, with no
// systemd or D-Bus. Pass a ContainerCgroup's dirs() (one per hierarchy);
// each figure is taken from the first directory that has it, and a figure
// no directory has stays unset (its controller is not on this cgroup).
//
// Privilege: reading cgroupfs, which is world-readable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::daemon::cgroup {

struct CgroupStats {
  std::optional<uint64_t> cpu_usage_ns;
  std::optional<uint64_t> memory_usage_bytes;
  std::optional<uint64_t> memory_limit_bytes;  // unset: unlimited
  std::optional<uint64_t> pids_current;
  std::optional<uint64_t> pids_limit;  // unset: unlimited
  std::optional<uint64_t> io_read_bytes, io_write_bytes;
};

// An error only when no directory can be read at all.
absl::StatusOr<CgroupStats> ReadCgroupStats(const std::vector<std::string>& dirs);

}  // namespace berth::daemon::cgroup
