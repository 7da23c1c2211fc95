// What an instance uses, read by the daemon from the cgroup its init is in
// (instance stats): found from /proc/<init>/cgroup through this mount
// namespace's mountinfo (launch/cgroups.h), on cgroup v2 and on each v1
// hierarchy (memory, cpuacct, pids, blkio). Nothing the client sends names
// a directory.
//
// An instance has a cgroup of its own (instance_cgroup.h) whose directories
// are read (ReadCgroupStatsIn); one that has none (the daemon could not make
// it) is read where its init is (ReadCgroupStats), and the reply says the
// figures are that shared cgroup's.
//
// Privilege: reads /proc and cgroupfs (world-readable files).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::daemon::instance {

struct CgroupStats {
  std::string cgroup;  // the directory read (the memory one on v1)
  uint64_t cpu_usage_ns = 0, cpu_user_ns = 0, cpu_system_ns = 0;
  uint64_t memory_usage = 0;
  uint64_t memory_limit = 0;  // 0: none
  uint64_t pids_current = 0;
  uint64_t pids_limit = 0;  // 0: none
  uint64_t io_read_bytes = 0, io_write_bytes = 0;
};

// The stats of the cgroups `pid` is in.
absl::StatusOr<CgroupStats> ReadCgroupStats(pid_t pid);
// The stats of `dirs` (one directory per hierarchy).
absl::StatusOr<CgroupStats> ReadCgroupStatsIn(const std::vector<std::string>& dirs);

}  // namespace berth::daemon::instance
