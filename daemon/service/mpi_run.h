// Applying a site MPI stack to a run (--mpi[=STACK], or berth.conf's
// default under a PMI launcher; docs/mpi.md): the stack is read from
// <config-dir>/mpi.d, its host libraries found through the host's loader
// cache, paired with the image's (mpi/bind_plan.h: ABI rule, MPI family,
// glibc guard), and the plan becomes read-only binds of host files the
// daemon opened itself, device binds, and environment. A refusal is one
// line naming the stack, both libraries and the rule.
//
// Privilege: root's: reads the host's libraries and the mounted image, and
// opens the host files it binds (the stack is the administrator's; nothing
// in the request names a host file here).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "berth/v1/berth.pb.h"
#include "daemon/daemon_options.h"
#include "daemon/launch/launch.h"
#include "daemon/policy/config.h"

namespace berth::daemon {

// The stack a request asks for ("" for none): its --mpi, "default" meaning
// berth.conf's, or berth.conf's when the caller runs under a PMI launcher.
absl::StatusOr<std::string> MpiStackOf(const v1::RunRequest& r, const policy::Config& config);

// Adds the stack's binds and environment to `spec` (after its environment
// was built). `notices` gets the ABI warnings; `explained` gets `berth mpi
// check`'s description of the plan (BERTH_MPI_EXPLAIN=1: INFO lines; =json:
// one JSON object), also when the plan is refused.
absl::Status AddMpiStack(const v1::RunRequest& r, const DaemonOptions& options,
                         const policy::Config& config, launch::LaunchSpec& spec,
                         std::vector<std::string>& notices, std::vector<std::string>& explained);

}  // namespace berth::daemon
