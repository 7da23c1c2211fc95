// Which processes share one container: the key of a shared container, taken
// from what the daemon sees of the calling process, never from the request.
//
// Under Slurm, the ranks of one job step on this node share: the step comes
// from the caller's cgroup where Slurm's cgroup plugins made one
// (".../job_<J>/step_<S>/..."), else from the environment the caller was
// started with (SLURM_JOB_ID, SLURM_STEP_ID in /proc/<pid>/environ, read by
// the daemon). Outside Slurm, with --sharens, the processes with the same
// parent process share (Apptainer 1.3's rule). The key always holds the
// caller's uid as the kernel gave it: whatever a process claims about its
// job, it can only ever reach containers of its own uid.
//
// The key also names an anchor, the process whose end marks the end of the
// group: the step's slurmstepd (root-owned), or the shared parent. A
// container without ranks stays until its anchor ends, so that the ranks
// of one step that start a little apart still find it.
//
// Privilege: reads other users' /proc/<pid>/{cgroup,environ,stat,status},
// which needs the daemon's rights; acts on nothing.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::daemon::shared {

// How a request asks to share (the RunRequest's share mode).
enum class ShareRequest { kDefault, kParent, kNever };

struct SlurmStep {
  std::string job;   // decimal job id
  std::string step;  // decimal step id
};

struct ShareKey {
  uid_t uid = 0;
  // "slurm step 12.0", "parent 4242": for messages and the key.
  std::string scope;
  std::string job;    // the Slurm job id; empty outside Slurm
  pid_t anchor = -1;  // -1: none found (the container ends with its last rank)
  bool operator==(const ShareKey& o) const { return uid == o.uid && scope == o.scope; }
};

// The Slurm step of /proc/<pid>/cgroup's text: the first (outermost)
// "job_<digits>/step_<digits>" pair of any hierarchy; nothing when none.
std::optional<SlurmStep> SlurmStepFromCgroup(absl::string_view proc_cgroup);

// The Slurm step of /proc/<pid>/environ's text (NUL-separated): the first
// SLURM_JOB_ID and SLURM_STEP_ID, both decimal; nothing when one is missing
// or malformed (a batch script has no step: it does not share).
std::optional<SlurmStep> SlurmStepFromEnviron(absl::string_view environ);

struct ShareKeySources {
  bool share_slurm_steps = true;  // berth.conf [mpi]
  // The caller's environment is readable (a system daemon). A user-mode
  // daemon, in a user namespace of its own, may not read it: it finds the
  // step in the cgroup only.
  bool read_environ = true;
};

// The key for the caller `pid` (uid from the kernel, `pidfd` pinning it), or
// nothing when it shares with nobody: kNever; kDefault outside a Slurm step
// or when `share_slurm_steps` is off.
absl::StatusOr<std::optional<ShareKey>> ShareKeyOf(pid_t pid, int pidfd, uid_t uid,
                                                   ShareRequest request,
                                                   const ShareKeySources& sources);

}  // namespace berth::daemon::shared
