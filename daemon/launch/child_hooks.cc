// The OCI hooks the child runs itself (CDI specs' containerEdits.hooks):
//   createContainer  after the mount tree is built, before pivot_root: in
//                    the container's mount namespace while it still shows
//                    the host's tree (runc's moment), with the daemon's
//                    privileges, in the caller's cgroups;
//   startContainer   after the identity switch, just before the payload:
//                    as the caller, the path resolved inside the container.
// Before each stage the child asks the parent for the OCI state (which, for
// createContainer, first runs the createRuntime hooks in the daemon's own
// namespaces). A hook that fails, or outlives its timeout, fails the launch
// naming it. Rules: child.h.
#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>

#include "daemon/launch/child_internal.h"
#include "daemon/launch/hook_exec.h"
#include "daemon/launch/launch.h"

namespace berth::daemon::launch::child {
namespace {

bool HasStage(const ChildPlan& plan, int stage) {
  for (const ChildHook& h : plan.hooks) {
    if (h.stage == stage) return true;
  }
  return false;
}

// The parent's OCI state for `stage`, into `reply.text`.
void AskState(const ChildPlan& plan, int stage, ChildMessage& reply) {
  ChildMessage ask;
  ask.kind = ChildMessage::kHookState;
  ask.err = stage;
  if (send(plan.channel_fd, &ask, sizeof(ask), MSG_NOSIGNAL) != sizeof(ask)) {
    Fail(plan, "asking for the hooks' state", nullptr, errno);
  }
  ssize_t n = recv(plan.channel_fd, &reply, sizeof(reply), 0);
  if (n != static_cast<ssize_t>(sizeof(reply)) || reply.kind != ChildMessage::kHookStateReply) {
    // The parent's own failure (a createRuntime hook) is its message to tell.
    Fail(plan, "running the hooks", "no state from the launcher", n < 0 ? errno : EPROTO);
  }
  reply.text[sizeof(reply.text) - 1] = '\0';
}

size_t Length(const char* s) {
  size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

}  // namespace

void RunHooks(const ChildPlan& plan, int stage, int out_fd) {
  bool asks =
      HasStage(plan, stage) ||
      (stage == static_cast<int>(HookSpec::Stage::kCreateContainer) && plan.ask_before_pivot);
  if (!asks) return;
  ChildMessage state;
  AskState(plan, stage, state);
  size_t len = Length(state.text);
  for (const ChildHook& h : plan.hooks) {
    if (h.stage != stage) continue;
    HookProcess p;
    p.binary_fd = h.binary_fd;
    p.path = h.path.c_str();
    p.argv = h.argv.data();
    p.envp = h.envp.data();
    p.timeout_ms = h.timeout_ms;
    HookOutcome outcome = RunHookProcess(p, state.text, len, out_fd);
    if (outcome.ok()) continue;
    char why[96];
    DescribeHookOutcome(outcome, why, sizeof why);
    // errno 0: the description is the whole story (launch.cc).
    Fail(plan, h.what.c_str(), why, outcome.spawn_errno);
  }
}

}  // namespace berth::daemon::launch::child
