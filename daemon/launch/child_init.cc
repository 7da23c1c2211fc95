// The last steps: the tiny init that stays as the container's first process,
// and the payload's exec. Rules: child.h.
//
// Why an init. With a PID namespace: as PID 1 the kernel drops every signal
// it has no handler for, so a payload running as PID 1 ignores `kill -TERM
// $$` and Ctrl-C, and nobody reaps the orphans of daemonizing programs.
// Without one (the default): nothing would end the payload's background
// jobs and daemons with it; they would outlive the container, holding its mount
// namespace and image. The init blocks all signals, waits for them with
// sigtimedwait, forwards each to the payload, reaps every child, and exits
// with the payload's status (128+N for a signal; the exact wait status also
// goes to the launcher through the status pipe, since the init cannot die
// of the same signal itself).
//
// Ending the container's processes with it, without a PID namespace: the
// init is their child subreaper, so every orphan in the payload's tree
// (double-forked, setsid'ed, whatever its session or process group) becomes
// the init's child instead of escaping to the host's init. When the payload
// exits, or the launcher sends kEndContainerSignal, the init kills each of
// its children, reaps them, and repeats (each death hands the dead process's
// children to the init) until it has none; only then does it exit. It finds
// its children in /proc/thread-self/children, opened before pivot_root. The
// caller cannot kill the init to orphan the rest out of reach: its real and
// saved uid are not the caller's (DropInitPrivileges). With a PID
// namespace, the init's exit ends every process in it.
//
// A holder's init (LaunchSpec::hold) forks nothing: it keeps a shared
// container's namespaces alive and reaps whatever the PID namespace leaves
// it, until the daemon kills it. With --userns or --fakeroot it makes the
// container's user namespace (and, with --fakeroot, the mount namespace that
// namespace owns) itself, so the processes that join enter the same ones.
//
// The init then releases the daemon's anonymous memory it inherited
// (ReleaseDaemonMemory) and lives on its stack, making raw system calls only.
//
// Privilege: the payload drops to the caller (DropPrivileges), enters the
// working directory and runs the startContainer hooks as the caller between
// the init's vfork and its exec; the init drops to DropInitPrivileges'
// identity once the payload has exec'd. Neither keeps a capability.
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <ctime>

#include "daemon/launch/child_internal.h"
#include "daemon/launch/launch.h"

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

// The payload's own steps, in the process that execs it: the caller's
// identity first, so that the working directory and the startContainer hooks
// (OCI: inside the container, before the program) see only what the caller
// may.
[[noreturn]] void BecomePayload(ChildPlan& plan) {
  DropPrivileges(plan);
  EnterCwd(plan);
  RunHooks(plan, static_cast<int>(HookSpec::Stage::kStartContainer), 2);
  ExecPayload(plan);
}

// From here on the init only calls syscall(), already bound by the
// dynamic linker in this process, and uses its stack (see ReleaseDaemonMemory).
[[noreturn]] void ExitLike(int wait_status) {
  int code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
  for (;;) syscall(SYS_exit_group, code);
}

// SIGKILLs every child listed in `children_fd` (/proc/thread-self/children:
// pids separated by spaces). A child cannot be reaped by anyone but the
// init, so a listed pid is not reused before the init reaps it.
void KillChildren(int children_fd) {
  syscall(SYS_lseek, children_fd, 0, SEEK_SET);
  char buf[4096];
  long pid = 0;
  bool in_number = false;
  for (;;) {
    long n = syscall(SYS_read, children_fd, buf, sizeof(buf));
    if (n <= 0) break;
    for (long i = 0; i < n; ++i) {
      if (buf[i] >= '0' && buf[i] <= '9') {
        pid = pid * 10 + (buf[i] - '0');
        in_number = true;
        continue;
      }
      if (in_number) syscall(SYS_kill, pid, SIGKILL);
      pid = 0;
      in_number = false;
    }
  }
  if (in_number) syscall(SYS_kill, pid, SIGKILL);
}

// What the init's loop needs, on its stack: ReleaseDaemonMemory() zeroes the
// heap the ChildPlan lives in.
struct InitState {
  pid_t payload;
  int status_fd;
  int children_fd;  // -1 with a PID namespace
};

// Without a PID namespace: kills and reaps the init's children until it has
// none (see the file comment). A pass may miss a child the list reordered
// under it, so the init never blocks on a child it may not have killed: it
// waits for SIGCHLD at most 50 ms, then kills again.
void EndDescendants(const InitState& init) {
  if (init.children_fd < 0) return;
  uint64_t sigchld = uint64_t{1} << (SIGCHLD - 1);
  for (;;) {
    KillChildren(init.children_fd);
    for (;;) {
      int status = 0;
      long pid = syscall(SYS_wait4, -1, &status, WNOHANG | __WALL, nullptr);
      if (pid < 0 && errno == ECHILD) return;
      if (pid <= 0) break;
    }
    timespec pause{0, 50'000'000};
    syscall(SYS_rt_sigtimedwait, &sigchld, nullptr, &pause, kKernelSigsetSize);
  }
}

// Reaps everything that has exited; when the payload is among them, ends
// what is left of the container and exits like it.
void ReapChildren(const InitState& init) {
  for (;;) {
    int status = 0;
    pid_t pid = static_cast<pid_t>(syscall(SYS_wait4, -1, &status, WNOHANG | __WALL, nullptr));
    if (pid <= 0) return;
    if (pid == init.payload) {
      // On failure the launcher falls back to the init's own exit status.
      syscall(SYS_write, init.status_fd, &status, sizeof(status));
      EndDescendants(init);
      ExitLike(status);
    }
  }
}

// What the init must keep: its live stack (it never returns above RunInit)
// and its thread's TCB and static TLS, around the thread pointer. Adjacent
// anonymous mappings merge, so these may sit inside a big heap mapping.
struct KeepWindows {
  uintptr_t lo[2];
  uintptr_t hi[2];
};

KeepWindows WindowsAround(const void* stack) {
  constexpr uintptr_t kPage = 4096;
  auto sp = reinterpret_cast<uintptr_t>(stack);
  auto tp = reinterpret_cast<uintptr_t>(__builtin_thread_pointer());
  KeepWindows w{
      {(sp - (64 << 10)) & ~(kPage - 1), (tp - (1 << 20)) & ~(kPage - 1)},
      {(sp + (64 << 10) + kPage) & ~(kPage - 1), (tp + (64 << 10) + kPage) & ~(kPage - 1)}};
  if (w.lo[1] < w.lo[0]) {
    KeepWindows s{{w.lo[1], w.lo[0]}, {w.hi[1], w.hi[0]}};
    return s;
  }
  return w;
}

// Releases [start, end) except the keep windows (sorted by their start).
void ReleaseOutside(uintptr_t start, uintptr_t end, const KeepWindows& keep) {
  uintptr_t cur = start;
  for (int i = 0; i < 2; ++i) {
    if (keep.lo[i] > cur && cur < end) {
      uintptr_t stop = keep.lo[i] < end ? keep.lo[i] : end;
      syscall(SYS_madvise, cur, stop - cur, MADV_DONTNEED);
    }
    if (keep.hi[i] > cur) cur = keep.hi[i];
  }
  if (cur < end) syscall(SYS_madvise, cur, end - cur, MADV_DONTNEED);
}

uintptr_t ParseHex(const char*& c, char stop) {
  uintptr_t v = 0;
  for (; *c != stop && *c != '\0'; ++c) {
    v = v * 16 + static_cast<uintptr_t>(*c <= '9' ? *c - '0' : *c - 'a' + 10);
  }
  return v;
}

// Parses "start-end perms offset dev inode [path]" and releases the range if
// it is private, writable and anonymous (no path, or [heap]/[stack]).
void ReleaseIfDaemonHeap(const char* line, const KeepWindows& keep) {
  const char* c = line;
  uintptr_t start = ParseHex(c, '-');
  ++c;
  uintptr_t end = ParseHex(c, ' ');
  const char* perms = c + 1;
  if (perms[0] == '\0' || perms[1] != 'w' || perms[3] != 'p') return;
  int field = 0;  // skip perms, offset, dev, inode: the path follows
  for (c = perms; *c != '\0' && field < 4; ++c) {
    if (*c == ' ') {
      while (c[1] == ' ') ++c;
      ++field;
    }
  }
  bool anonymous = *c == '\0' || *c == '[';
  if (*c == '[' && (c[1] == 'v' || c[1] == 'u')) anonymous = false;  // [vdso] [vvar] [uprobes]
  if (anonymous) ReleaseOutside(start, end, keep);
}

// The init is a copy-on-write image of the daemon: every daemon page it still
// shares would be copied the next time the daemon writes it, once per
// running container. Its loop needs only its stack and TLS, so it gives the
// daemon's heap, arenas and other threads' stacks back. Best effort. Parsed
// byte by byte: a libc call now might need the dynamic linker's memory.
void ReleaseDaemonMemory() {
  char local;
  KeepWindows keep = WindowsAround(&local);
  int fd = static_cast<int>(syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC));
  if (fd < 0) return;
  char buf[4096];
  char line[512];
  size_t len = 0;
  for (;;) {
    long n = syscall(SYS_read, fd, buf, sizeof(buf));
    if (n <= 0) break;
    for (long i = 0; i < n; ++i) {
      if (buf[i] != '\n') {
        if (len + 1 < sizeof(line)) line[len++] = buf[i];
        continue;
      }
      line[len] = '\0';
      ReleaseIfDaemonHeap(line, keep);
      len = 0;
    }
  }
  syscall(SYS_close, fd);
}

[[noreturn]] void RunInit(ChildPlan& plan) {
  // Orphans anywhere in the payload's tree come back to the init.
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    Fail(plan, "making the init a subreaper", nullptr, errno);
  }
  // vfork: the payload borrows this address space (a copy of the daemon's,
  // ~350 mappings) until its execve instead of copying it once more (about
  // 1 ms of fork, and again of exec tearing the copy down), and the init
  // sleeps meanwhile, so the two never run on the same stack at once. Unlike
  // fork(), glibc's vfork runs no atfork handlers of the daemon's. The
  // payload's credential calls change only its own task, not the memory.
  pid_t payload = -1;
  if (plan.hold) {
    // A holder: no payload; the launcher's wait ends when the channel closes.
    syscall(SYS_setsid);
    // Its user namespace, if the container has one, is the init's own, made
    // before the launcher opens the namespaces: left to a payload (there is
    // none), /proc/<init>/ns/user would be the daemon's, and a join would
    // setns() into its own user namespace (EINVAL).
    if (plan.user_namespace) EnterHolderUserNamespace(plan);
    // The launcher opens this init's namespaces first, while it is still the
    // daemon's uid: a user-mode daemon may open /proc/<pid>/ns/* only of a
    // dumpable process (it has no capability over the mm its binary was
    // started with). Nothing of the caller's runs in the container yet, and
    // DropInitPrivileges makes the init non-dumpable again.
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) {
      Fail(plan, "opening the holder's namespaces", "PR_SET_DUMPABLE", errno);
    }
    Send(plan, ChildMessage::kHoldReady);
    ChildMessage reply;
    ssize_t n = recv(plan.channel_fd, &reply, sizeof(reply), 0);
    if (n != static_cast<ssize_t>(sizeof(reply)) || reply.kind != ChildMessage::kHoldOpened) {
      Fail(plan, "opening the holder's namespaces", "no answer from the launcher",
           n < 0 ? errno : EPROTO);
    }
    Send(plan, ChildMessage::kExecuting);
  } else {
    payload = vfork();
    if (payload < 0) Fail(plan, "starting the payload", nullptr, errno);
    if (payload == 0) BecomePayload(plan);
  }
  // In ps it would otherwise carry the daemon's name.
  prctl(PR_SET_NAME, "berth-init", 0, 0, 0);
  DropInitPrivileges(plan);
  // Keep only the status pipe and the children list: the payload's stdio and
  // the control channel must close when the payload closes them.
  const InitState init{payload, plan.status_fd, plan.children_fd};
  int keep[4] = {init.status_fd, init.children_fd, -1, -1};
  CloseAbove(0, keep);
  ReleaseDaemonMemory();
  uint64_t all = ~uint64_t{0};
  for (;;) {
    siginfo_t info;
    int sig =
        static_cast<int>(syscall(SYS_rt_sigtimedwait, &all, &info, nullptr, kKernelSigsetSize));
    if (sig < 0) continue;
    if (sig == SIGCHLD) {
      ReapChildren(init);
      continue;
    }
    if (init.payload > 0) {
      // The payload's end (SIGCHLD) then ends the rest.
      syscall(SYS_kill, init.payload, sig == kEndContainerSignal ? SIGKILL : sig);
    } else if (sig == kEndContainerSignal) {
      // A holder ends when the daemon says so, and its namespaces with it.
      EndDescendants(init);
      for (;;) syscall(SYS_exit_group, 0);
    }
  }
}

}  // namespace

void OpenChildrenList(ChildPlan& plan) {
  if (!plan.run_init || plan.pid_namespace) return;
  int fd = static_cast<int>(
      syscall(SYS_openat, AT_FDCWD, "/proc/thread-self/children", O_RDONLY | O_CLOEXEC));
  if (fd < 0) Fail(plan, "opening the init's /proc/thread-self/children", nullptr, errno);
  plan.children_fd = fd;
}

void StartPayload(ChildPlan& plan) {
  if (plan.run_init) RunInit(plan);
  BecomePayload(plan);
}

}  // namespace berth::daemon::launch::child
