// The parent's half of OCI hooks (LaunchSpec::devices.hooks, from CDI
// specs): sorting them between the child (createContainer, startContainer:
// child_hooks.cc) and the daemon (createRuntime, poststart, poststop, run
// here in the daemon's own namespaces), and the OCI state each is given.
//
// Stages and failures follow the OCI runtime spec: a createRuntime,
// createContainer or startContainer hook that fails (non-zero exit, signal,
// timeout) fails the launch with its name; poststart and poststop failures
// are logged and the container goes on (or is already gone).
//
// berth has no OCI bundle: the state's "bundle" is empty, so hooks that
// read the bundle's config.json (nvidia-cdi-hook update-ldcache) cannot
// work; docs/config.md says so.
//
// Privilege: the daemon's. The hook binaries were opened and checked
// (root-owned, not writable by others) by daemon/gpu before they got here.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/unique_fd.h"
#include "daemon/launch/child.h"
#include "daemon/launch/launch.h"

namespace berth::daemon::launch {

// The hooks the daemon runs itself.
struct HostHooks {
  std::vector<HookSpec> create_runtime, poststart, poststop;
  UniqueFd output;  // the caller's stderr, or invalid
};

// Fills `plan.hooks` and `host` from `spec.devices.hooks`; the plan points
// into `spec`, which must outlive the launch.
absl::Status PlanHooks(LaunchSpec& spec, ChildPlan& plan, HostHooks& host);

// The child asked for the state of a stage (ChildMessage::kHookState):
// runs the createRuntime hooks first when it is createContainer's turn,
// then answers on `channel`.
absl::Status AnswerHookState(HostHooks& host, pid_t pid, int stage, int channel);

// The OCI state JSON of container `pid` in `status`.
std::string OciState(pid_t pid, const char* status);

// Runs poststart or poststop hooks; failures are logged, not returned.
void RunLoggedHooks(const std::vector<HookSpec>& hooks, pid_t pid, const char* status,
                    int output_fd);

}  // namespace berth::daemon::launch
