#include "daemon/launch/hook_exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace berth::daemon::launch {
namespace {

struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  uint64_t mask;
};

// In the vfork child: only system calls, on the parent's stack.
[[noreturn]] void ExecHook(const HookProcess& hook, int in_fd, int out_fd, volatile int* err) {
  KernelSigaction dfl{SIG_DFL, 0, nullptr, 0};
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &dfl, nullptr, 8);
  }
  uint64_t none = 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, 8);
  if (syscall(SYS_dup2, in_fd, 0) < 0 ||
      (out_fd >= 0 && (syscall(SYS_dup2, out_fd, 1) < 0 || syscall(SYS_dup2, out_fd, 2) < 0))) {
    *err = errno;
    syscall(SYS_exit, 127);
  }
  syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  if (hook.binary_fd >= 0) {
    // A script's interpreter opens it as /dev/fd/N: N must survive the exec.
    syscall(SYS_fcntl, hook.binary_fd, F_SETFD, 0);
    syscall(SYS_execveat, hook.binary_fd, "", hook.argv, hook.envp, AT_EMPTY_PATH);
  } else {
    syscall(SYS_execve, hook.path, hook.argv, hook.envp);
  }
  *err = errno == 0 ? ENOEXEC : errno;
  for (;;) syscall(SYS_exit, 127);
}

HookOutcome Wait(pid_t pid, int timeout_ms) {
  HookOutcome out;
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    int ready;
    do {
      ready = poll(&p, 1, timeout_ms);
    } while (ready < 0 && errno == EINTR);
    if (ready == 0) {
      out.timed_out = true;
      syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    }
    close(pidfd);
  }
  int status = 0;
  while (syscall(SYS_wait4, pid, &status, 0, nullptr) < 0 && errno == EINTR) {
  }
  out.wait_status = status;
  return out;
}

// Appends `s` (and the decimal `n` when >= 0) to `buf`.
void Put(char* buf, size_t size, size_t& len, const char* s, long n = -1) {
  while (*s != '\0' && len + 1 < size) buf[len++] = *s++;
  if (n >= 0) {
    char digits[24];
    int d = 0;
    do {
      digits[d++] = static_cast<char>('0' + n % 10);
      n /= 10;
    } while (n > 0);
    while (d > 0 && len + 1 < size) buf[len++] = digits[--d];
  }
  buf[len] = '\0';
}

}  // namespace

HookOutcome RunHookProcess(const HookProcess& hook, const char* state, size_t state_len,
                           int out_fd) {
  HookOutcome out;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    out.spawn_errno = errno;
    return out;
  }
  volatile int exec_errno = 0;
  // vfork: the hook borrows this address space (the daemon's, or its copy
  // in the container's child) only until its execve, and we sleep meanwhile.
  pid_t pid = vfork();
  if (pid == 0) ExecHook(hook, pipe_fds[0], out_fd, &exec_errno);
  int err = errno;
  close(pipe_fds[0]);
  if (pid < 0) {
    close(pipe_fds[1]);
    out.spawn_errno = err;
    return out;
  }
  // The state is far below a pipe's capacity; a hook that ignores its stdin
  // just leaves it there (EPIPE when it is gone already).
  ssize_t written = write(pipe_fds[1], state, state_len);
  (void)written;
  close(pipe_fds[1]);
  out = Wait(pid, hook.timeout_ms);
  out.spawn_errno = exec_errno;
  return out;
}

void DescribeHookOutcome(const HookOutcome& outcome, char* buf, size_t size) {
  size_t len = 0;
  if (size == 0) return;
  buf[0] = '\0';
  if (outcome.timed_out) {
    Put(buf, size, len, "timed out");
  } else if (outcome.spawn_errno != 0) {
    Put(buf, size, len, "could not be started");
  } else if (WIFSIGNALED(outcome.wait_status)) {
    Put(buf, size, len, "killed by signal ", WTERMSIG(outcome.wait_status));
  } else {
    Put(buf, size, len, "exited with status ", WEXITSTATUS(outcome.wait_status));
  }
}

}  // namespace berth::daemon::launch
