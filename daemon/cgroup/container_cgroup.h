// A container's own cgroup, made by the daemon below the caller's cgroup in
// every hierarchy its limits need (cgroup v2, and one child per v1
// controller hierarchy), so that a limit can only tighten what the caller
// already has: under Slurm the container stays inside the job's cgroup and
// the job's limits keep applying above the container's.
//
// cgroup v2's no-internal-process rule: a cgroup holding processes cannot
// give its children controllers. When the caller's cgroup holds processes
// (a login session scope, Slurm's task_N), its processes are first moved
// into a leaf child, kCallerLeaf, as Slurm and systemd's delegation do for
// their own trees (docs/security.md, "Container cgroups"). A later request
// from inside that leaf puts its container beside the leaf, not below it.
//
// Destroying a ContainerCgroup ends whatever is left in it and removes its
// directories: nothing is left behind.
//
// Privilege: the daemon's (root, or the user for a user-mode daemon, which
// can only use cgroups delegated to it). Directories come from the kernel
// (/proc/<pid>/cgroup), never from the request.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/cgroup/resources.h"
#include "daemon/launch/cgroups.h"

namespace berth::daemon::cgroup {

inline constexpr char kCallerLeaf[] = "berth-caller";

struct CreateOptions {
  // The directories' name prefix ("berth" -> berth-<daemon pid>-<n>).
  std::string prefix = "berth";
  // Also make children in the accounting hierarchies (cpu, cpuacct, memory,
  // pids, io) without limits, so that ReadCgroupStats sees the container
  // alone (instances).
  bool for_stats = false;
};

class ContainerCgroup {
 public:
  struct Made {
    std::string parent;  // the caller's directory (or the leaf's parent)
    std::string dir;     // the container's
    bool v2 = false;
  };

  // Makes the cgroup below `caller` (the caller's hierarchies, from
  // launch::CgroupHierarchiesOf) and writes `r`'s limits. A limit that
  // cannot be applied (controller not mounted, not enabled or not
  // delegated) is an error naming the controller; nothing is left behind.
  static absl::StatusOr<ContainerCgroup> Create(const std::vector<launch::CgroupHierarchy>& caller,
                                                const Resources& r,
                                                const CreateOptions& options = {});

  // One made earlier (by this daemon or the one before it: an adopted
  // instance's), taken over as it is: its directories are removed with it.
  static ContainerCgroup Adopt(std::vector<Made> made);

  ContainerCgroup() = default;
  ContainerCgroup(ContainerCgroup&& other) noexcept;
  ContainerCgroup& operator=(ContainerCgroup&& other) noexcept;
  ~ContainerCgroup();

  const std::vector<Made>& made() const { return made_; }
  std::vector<std::string> dirs() const;

  // Puts the container's directories in place of the caller's in `join`
  // (the directories a container joins, see launch::CgroupDirsToJoin).
  void ReplaceIn(std::vector<std::string>& join) const;

  // Whether the kernel's OOM killer killed a process of this cgroup, and
  // how many it killed so far (a join into an instance compares the count).
  bool OomKilled() const { return OomKills() > 0; }
  uint64_t OomKills() const;

  // Ends what is left in the cgroup and removes it (also done on destruction).
  absl::Status Remove();

  // Lets the cgroup outlive this object (an instance left running for the
  // next daemon, which adopts it).
  void Detach() { made_.clear(); }

 private:
  std::vector<Made> made_;
};

}  // namespace berth::daemon::cgroup
