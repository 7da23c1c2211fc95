// The last steps: the payload's exec and, with a PID namespace, the tiny init
// that stays as its PID 1. Rules: child.h.
//
// Why an init: as PID 1 of a namespace the kernel drops every signal it has
// no handler for, so a payload running as PID 1 ignores `kill -TERM $$` and
// Ctrl-C, and nobody reaps the orphans of daemonizing programs. The init
// blocks all signals, waits for them with sigtimedwait, forwards each to the
// payload, reaps every child, and exits with the payload's status (128+N for
// a signal; the exact wait status also goes to the launcher through the
// status pipe, since the init cannot die of the same signal itself).
//
// Privilege: none left; this runs after DropPrivileges().
#include <linux/capability.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "daemon/launch/child_internal.h"

namespace berth::daemon::launch::child {
namespace {

constexpr size_t kKernelSigsetSize = sizeof(uint64_t);

void UnblockAllSignals() {
  uint64_t none = 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, kKernelSigsetSize);
}

// A session of its own: the payload never shares the daemon's (or the
// init's) session, so /dev/tty is only ever the terminal it was given.
void EnterSession(const ChildPlan& plan) {
  if (syscall(SYS_setsid) < 0 && errno != EPERM) Fail(plan, "creating a session", nullptr, errno);
  if (plan.controlling_tty >= 0 && ioctl(plan.controlling_tty, TIOCSCTTY, 0) != 0) {
    Fail(plan, "making the terminal the controlling terminal", nullptr, errno);
  }
}

// Tries each candidate path like execvp: a missing one or a non-directory
// prefix moves on; EACCES is remembered in case nothing else works.
[[noreturn]] void ExecPayload(ChildPlan& plan) {
  EnterSession(plan);
  UnblockAllSignals();
  Send(plan, ChildMessage::kExecuting);
  int err = ENOENT;
  bool saw_eacces = false;
  for (const std::string& path : plan.exec_candidates) {
    execve(path.c_str(), const_cast<char* const*>(plan.argv.data()),
           const_cast<char* const*>(plan.envp.data()));
    if (errno == EACCES) {
      saw_eacces = true;
    } else if (errno != ENOENT && errno != ENOTDIR) {
      err = errno;
      break;
    }
  }
  if (saw_eacces && err == ENOENT) err = EACCES;
  Fail(plan, plan.exec_what.c_str(), nullptr, err);
}

[[noreturn]] void ExitLike(int wait_status) {
  if (WIFEXITED(wait_status)) _exit(WEXITSTATUS(wait_status));
  _exit(128 + WTERMSIG(wait_status));
}

// Reaps everything that has exited; returns when the payload is among them.
bool ReapChildren(pid_t payload, int status_fd) {
  for (;;) {
    int status = 0;
    pid_t pid = static_cast<pid_t>(syscall(SYS_wait4, -1, &status, WNOHANG, nullptr));
    if (pid <= 0) return false;
    if (pid == payload) {
      if (write(status_fd, &status, sizeof(status)) < 0) {
        // The launcher then falls back to the init's own exit status.
      }
      ExitLike(status);
    }
  }
}

[[noreturn]] void RunInit(ChildPlan& plan) {
  // A raw fork: glibc's would run the daemon's atfork handlers.
  pid_t payload = static_cast<pid_t>(syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, 0));
  if (payload < 0) Fail(plan, "starting the payload", nullptr, errno);
  if (payload == 0) ExecPayload(plan);
  // In ps it would otherwise carry the daemon's name.
  prctl(PR_SET_NAME, "berth-init", 0, 0, 0);
  // The init needs no capability, even when the payload (fakeroot) keeps
  // those of its user namespace.
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct none[2] = {};
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  syscall(SYS_capset, &header, none);
  // Keep only the status pipe: the payload's stdio and the control channel
  // must close when the payload closes them.
  int status_fd = plan.status_fd;
  if (status_fd > 0) syscall(SYS_close_range, 0U, static_cast<unsigned>(status_fd) - 1, 0);
  syscall(SYS_close_range, static_cast<unsigned>(status_fd) + 1, ~0U, 0);
  uint64_t all = ~uint64_t{0};
  for (;;) {
    siginfo_t info;
    int sig =
        static_cast<int>(syscall(SYS_rt_sigtimedwait, &all, &info, nullptr, kKernelSigsetSize));
    if (sig < 0) continue;
    if (sig == SIGCHLD) {
      ReapChildren(payload, status_fd);
      continue;
    }
    syscall(SYS_kill, payload, sig);
  }
}

}  // namespace

void StartPayload(ChildPlan& plan) {
  if (plan.run_init) RunInit(plan);
  ExecPayload(plan);
}

}  // namespace berth::daemon::launch::child
