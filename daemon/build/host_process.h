// Programs a build runs on the host's file system rather than in the image:
// %pre and %setup (Apptainer runs them on the host), debootstrap, and the
// build worker (berth-build-worker: unpacking, copying, squashing). Each
// runs as the build's fakeroot user, never as real root.
//
// Shape: a raw clone3() child of the calling thread, created in the
// caller's cgroup v2 (CLONE_INTO_CGROUP: Slurm's limits apply), which takes
// the caller's supplementary groups, creates a user namespace (while still
// the daemon's uid, so the namespace is the daemon's and not the caller's to
// enter), waits for the daemon to write its maps (daemon/fakeroot's: the
// caller at 0, plus the caller's subordinate range), becomes 0 inside, then
// unshares a mount and a PID namespace of that user namespace and forks the
// program as PID 1 there: its mounts (debootstrap mounts /proc in its
// target) stay private, and killing it takes every process it started. The
// program gets no_new_privs and exactly the descriptors listed.
//
// So the program has the caller's rights on the host and nothing more: the
// capabilities root has in that namespace apply only to files owned by the
// caller or the caller's subordinate ids (the kernel's rule for namespaced
// capabilities), which the caller can always reach with newuidmap anyway;
// /etc/shadow or another user's files stay out of reach (security.md).
//
// Privilege: Start() runs as the daemon (it clones, and writes the maps
// with CAP_SETUID/CAP_SETGID over its own user namespace); the child drops
// to the caller before running anything. The child follows daemon/launch's
// rules for a clone of a multi-threaded process: system calls only.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "daemon/launch/launch.h"

namespace berth::daemon::build {

struct HostProcessSpec {
  std::string what;  // for messages: "%setup", "the build worker"
  UniqueFd program;  // an executable the daemon opened (execveat)
  std::vector<std::string> argv;
  std::vector<std::string> env;
  // Descriptors placed at these numbers; every other one is closed.
  std::vector<std::pair<UniqueFd, int>> fds;
  UniqueFd cwd;  // a directory (O_PATH is enough) the program starts in
  // The caller, and the fakeroot maps (the first line maps 0 to the caller;
  // empty = the single-id maps).
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  std::vector<launch::IdMapping> uid_map;
  std::vector<launch::IdMapping> gid_map;
  // The caller's cgroup v2 directory to create the process in; "" = ours.
  std::string cgroup_dir;
};

// A running host process. Destroying one that was not waited for kills it
// (and, with it, every process of its PID namespace) and reaps it.
class HostProcess {
 public:
  HostProcess(HostProcess&& other) noexcept;
  HostProcess& operator=(HostProcess&& other) noexcept;
  ~HostProcess();

  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }
  void Kill();
  // Blocks until it exits; the shell's convention (the exit code, or 128 +
  // the signal that killed the program).
  absl::StatusOr<int> Wait();

 private:
  friend absl::StatusOr<HostProcess> StartHostProcess(HostProcessSpec spec);
  HostProcess(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  bool reaped_ = true;
};

// Returns once the program has been exec'd (or with the reason it was not:
// "%setup: exec /bin/sh: No such file or directory").
absl::StatusOr<HostProcess> StartHostProcess(HostProcessSpec spec);

}  // namespace berth::daemon::build
