// Run sessions that start a named instance or join one (daemon/instance/).
//
// Start: the request is prepared as any run (the ECL, the image lease, the
// binds opened as the caller), then its container part goes to a holder
// (shared_run.h HolderSpecOf) that becomes the instance's init, and its
// process part, the startscript or runscript, joins it with the log files
// the client opened as descriptors 1 and 2. Neither joins the caller's
// cgroups: an instance outlives its client and the user's login session.
// Both go into the instance's own cgroup, below the daemon's (limits, the
// caller's own copied in so that they only tighten, and its stats).
//
// Join (instance://NAME): only the caller's own instance is found; the
// process is prepared without an image of its own and enters the
// instance's namespaces.
//
// Privilege: the daemon's (launching, reading the instance's /proc entry).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "berth/v1/berth.pb.h"
#include "daemon/instance/instance_registry.h"
#include "daemon/service/run_prepare.h"

namespace berth::daemon {

inline constexpr char kInstanceScheme[] = "instance://";

// The command an instance start runs: the image's startscript when it has
// one, else nothing (the instance idles), with the request's arguments.
void UseStartscript(v1::RunRequest& request);

// Checks what an instance start may not ask for (a terminal, no PID
// namespace); names the fix.
absl::Status CheckInstanceStart(const v1::RunRequest& request, bool pid_ns_allowed);

// --restart's policy: how many times the instance comes back (-1: always),
// or nothing for "" and "no". An error names the forms.
absl::StatusOr<std::optional<int>> ParseRestart(const std::string& policy);

// Launches the instance's init and its first process from `run`, both in
// `cgroup` (the instance's own, instance_cgroup.h; null: the daemon's);
// `limited`: it has limits, and joins land in it. The record's name, owner
// and image come from the caller.
absl::StatusOr<std::shared_ptr<instance::Instance>> LaunchInstance(
    const v1::RunRequest& request, uid_t uid, gid_t gid, PreparedRun& run,
    std::shared_ptr<cgroup::ContainerCgroup> cgroup, bool limited);

// What a join of `inst` needs to know about it.
JoinTarget JoinTargetOf(const instance::Instance& inst);

}  // namespace berth::daemon
