// What an instance uses, read by the daemon from the cgroup its init is in
// (instance stats): found from /proc/<init>/cgroup through this mount
// namespace's mountinfo (launch/cgroups.h), on cgroup v2 and on each v1
// hierarchy (memory, cpuacct, pids, blkio). Nothing the client sends names
// a directory.
//
// An instance's init lives in the cgroup the daemon puts it in; until
// instances get cgroups of their own (resource limits), that is the
// daemon's, and the figures are that cgroup's.
//
// Privilege: reads /proc and cgroupfs (world-readable files).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

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

}  // namespace berth::daemon::instance
