// What each limit writes into a cgroup: the interface file and value for
// cgroup v1 (one hierarchy per controller) and cgroup v2 (one tree), after
// runc's conversions (cpu shares to cpu.weight, blkio weight to io.weight,
// OCI's memory+swap to memory.swap.max). Pure: the caller writes them.
//
// A limit a version cannot express (--oom-kill-disable or swappiness on v2)
// is an error naming it, never skipped. Privilege: none.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/cgroup/resources.h"

namespace berth::daemon::cgroup {

struct LimitWrite {
  std::string controller;  // "memory", "cpu", "pids", ...
  std::string file;        // "memory.max", "cpu.cfs_quota_us", ...
  std::string value;
  std::string what;  // the flag or TOML key, for errors
};

// In the order they must be written (a cfs period before its quota, a
// memory limit before memory+swap).
absl::StatusOr<std::vector<LimitWrite>> V1Writes(const Resources& r);
absl::StatusOr<std::vector<LimitWrite>> V2Writes(const Resources& r);

// The distinct controllers of `writes`, in first-use order.
std::vector<std::string> ControllersOf(const std::vector<LimitWrite>& writes);

}  // namespace berth::daemon::cgroup
