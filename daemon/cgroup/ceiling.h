// The limits a process already lives under (the tightest of its cgroup and
// every ancestor's, in every hierarchy), and a request's limits tightened
// to them. A container cgroup made below the caller's needs none of this
// (the kernel applies the parents' limits); an instance's cgroup is made
// below the daemon's own (it must outlive the caller's session), so the
// caller's limits are read here at start and copied into it: a limit can
// only tighten what the caller already has (docs/security.md, "Instance
// cgroups").
//
// Covered: memory (memory.max / memory.limit_in_bytes), pids (pids.max) and
// cpu bandwidth (cpu.max / cpu.cfs_quota_us over cpu.cfs_period_us).
// Privilege: reads cgroupfs (world-readable); the directories come from the
// kernel (launch::CgroupHierarchiesOf), never from the request.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/cgroup/resources.h"
#include "daemon/launch/cgroups.h"

namespace berth::daemon::cgroup {

struct Ceiling {
  std::optional<int64_t> memory_bytes;
  std::optional<int64_t> pids;
  std::optional<double> cpus;  // quota / period
  bool empty() const { return !memory_bytes && !pids && !cpus; }
};

// The tightest limits over each hierarchy's directory and its ancestors.
Ceiling ReadCeiling(const std::vector<launch::CgroupHierarchy>& hierarchies);

// Lowers `r` to `c` where it asks for more or for nothing (the instance
// keeps the caller's limit); each change is one INFO line for the caller.
// A [unified] file that would set a covered limit is refused while the
// caller has that limit (it could loosen it).
absl::StatusOr<std::vector<std::string>> TightenTo(const Ceiling& c, Resources& r);

}  // namespace berth::daemon::cgroup
