// berthd's answer to `berth doctor` (the Doctor RPC): node_checks.h's
// findings, the daemon's mode and directories, and whether the kernel mounts
// squashfs with each compressor (squashfs_probe.h).
//
// The probes mount, so they run once per daemon, on the first request, and
// later requests get the same findings: the kernel does not change under a
// running daemon, and no caller can make the daemon attach loop devices or
// mount in a loop by asking again.
//
// Privilege: root in system mode (the probes attach loop devices and mount);
// a user-mode daemon reads images through FUSE and probes nothing.
#pragma once

#include <sys/types.h>

#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "berth/v1/berth.pb.h"
#include "daemon/daemon_options.h"

namespace berth::daemon::doctor {

class Doctor {
 public:
  explicit Doctor(const DaemonOptions& options) : options_(options) {}

  // The report for the caller `uid`/`gid` (their fakeroot ids).
  v1::DoctorReply Report(uid_t uid, gid_t gid);

 private:
  std::vector<v1::DoctorCheck> SquashfsChecks();
  std::vector<v1::DoctorCheck> RunProbes() const;

  DaemonOptions options_;
  absl::Mutex mu_;
  std::optional<std::vector<v1::DoctorCheck>> probes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::daemon::doctor
