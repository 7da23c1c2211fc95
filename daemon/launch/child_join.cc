// A process joining a live container (launch.h Join): in place of building a
// mount tree and pivoting into it, it enters the namespaces the daemon holds
// for that container. Rules: child.h.
//
// Entering the mount namespace also moves the root and working directory to
// that namespace's root, the container's "/": the later steps (cwd, exec)
// then resolve inside it exactly as in a new container. The PID namespace
// applies to the children only, so the payload is forked (child_init.cc);
// this process stays outside as the payload's parent, forwarding signals
// and reporting its status. The user namespace, if the container has one,
// is entered last, in DropPrivileges: it is the one the holder's init made
// (EnterHolderUserNamespace), never the daemon's own.
//
// Privilege: the daemon's; setns needs CAP_SYS_ADMIN over each namespace's
// owner, which the daemon has (it created them; a --fakeroot container's
// mount namespace is owned by the container's user namespace, a child of
// the daemon's made by its uid).
#include <sched.h>
#include <unistd.h>

#include <cerrno>

#include "daemon/launch/child_internal.h"

namespace berth::daemon::launch::child {

void EnterLiveContainer(const ChildPlan& plan) {
  struct Step {
    int fd;
    int type;
    const char* what;
  };
  const Step steps[] = {
      {plan.join_ipc_fd, CLONE_NEWIPC, "entering the container's IPC namespace"},
      {plan.join_uts_fd, CLONE_NEWUTS, "entering the container's UTS namespace"},
      {plan.join_net_fd, CLONE_NEWNET, "entering the container's network namespace"},
      {plan.join_pid_fd, CLONE_NEWPID, "entering the container's PID namespace"},
      {plan.join_mnt_fd, CLONE_NEWNS, "entering the container's mount namespace"},
  };
  for (const Step& step : steps) {
    if (step.fd < 0) continue;
    if (setns(step.fd, step.type) != 0) Fail(plan, step.what, nullptr, errno);
    close(step.fd);
  }
}

}  // namespace berth::daemon::launch::child
