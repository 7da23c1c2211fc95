// The child's main sequence and its process-level steps (signals, cgroups,
// network, hostname, cwd, descriptors, limits). Rules: child.h.
#include "daemon/launch/child.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "daemon/launch/child_internal.h"
#include "daemon/launch/launch.h"

namespace berth::daemon::launch {
namespace child {
namespace {

void Append(ChildMessage& msg, size_t& len, const char* s) {
  while (s != nullptr && *s != '\0' && len + 1 < sizeof(msg.text)) msg.text[len++] = *s++;
  msg.text[len] = '\0';
}

// The kernel's sigaction; glibc's refuses the signals it reserves, and the
// child must put every handler back to the default (the inherited ones point
// into daemon code).
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  uint64_t mask;
};

void ResetSignalHandlers() {
  uint64_t all = ~uint64_t{0};
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, nullptr, sizeof(all));
  KernelSigaction dfl{SIG_DFL, 0, nullptr, 0};
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof(uint64_t));
  }
}

void JoinCgroups(const ChildPlan& plan) {
  for (size_t i = 0; i < plan.cgroup_procs_fds.size(); ++i) {
    // "0" is the writer itself, in any PID namespace.
    if (write(plan.cgroup_procs_fds[i], "0", 1) != 1) {
      Fail(plan, plan.cgroup_what[i].c_str(), nullptr, errno);
    }
    close(plan.cgroup_procs_fds[i]);
  }
}

// Before the root is built: a fresh sysfs then shows this namespace's
// interfaces. A new namespace has "lo" down; Apptainer's "none" network has
// it up.
void SetUpNetwork(const ChildPlan& plan) {
  if (plan.netns_fd >= 0) {
    if (setns(plan.netns_fd, CLONE_NEWNET) != 0) {
      Fail(plan, "entering the network namespace of --netns-path", nullptr, errno);
    }
    return;
  }
  if (!plan.loopback_up) return;
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) Fail(plan, "bringing up loopback", "socket", errno);
  ifreq ifr{};
  memcpy(ifr.ifr_name, "lo", 3);
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) Fail(plan, "bringing up loopback", "lo", errno);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) Fail(plan, "bringing up loopback", "lo", errno);
  close(sock);
}

void SetHostname(const ChildPlan& plan) {
  if (plan.hostname.empty()) return;
  if (sethostname(plan.hostname.data(), plan.hostname.size()) != 0) {
    Fail(plan, "setting the hostname", nullptr, errno);
  }
}

// Places every requested descriptor at its number and closes the rest (the
// daemon's sockets, other containers' descriptors): the container gets
// exactly its fds. Sources are first copied above every target so that no
// dup3() overwrites a source still to be placed. The control channel, the
// status pipe, the init's children list and a live container's user
// namespace (entered later) survive as close-on-exec descriptors above the
// targets.
void PlaceDescriptors(ChildPlan& plan) {
  int floor = plan.max_target + 1 > 3 ? plan.max_target + 1 : 3;
  // The caller's numbers may exceed the daemon's NOFILE limit; the caller's
  // own limits are applied afterwards.
  rlimit nofile;
  rlim_t needed = static_cast<rlim_t>(floor) + plan.fds.size() + 8;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < needed) {
    nofile.rlim_cur = needed;
    if (nofile.rlim_max < needed) nofile.rlim_max = needed;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  int* kept[3] = {&plan.channel_fd, &plan.status_fd, &plan.children_fd};
  for (int* fd : kept) {
    if (*fd < 0) continue;
    *fd = fcntl(*fd, F_DUPFD_CLOEXEC, floor);
    if (*fd < 0) Fail(plan, "moving the launcher's descriptors", nullptr, errno);
  }
  if (plan.join_user_fd >= 0) {
    plan.join_user_fd = fcntl(plan.join_user_fd, F_DUPFD_CLOEXEC, floor);
    if (plan.join_user_fd < 0) Fail(plan, "moving the user namespace", nullptr, errno);
  }
  for (size_t i = 0; i < plan.fds.size(); ++i) {
    plan.fd_scratch[i] = fcntl(plan.fds[i].source, F_DUPFD_CLOEXEC, floor);
    if (plan.fd_scratch[i] < 0) Fail(plan, "copying the container's descriptors", nullptr, errno);
  }
  for (size_t i = 0; i < plan.fds.size(); ++i) {
    if (dup3(plan.fd_scratch[i], plan.fds[i].target, 0) < 0) {
      Fail(plan, "placing the container's descriptors", nullptr, errno);
    }
  }
  // The gaps between targets (sorted by the parent), then above them.
  int previous = -1;
  for (const FdPlacement& p : plan.fds) {
    CloseRange(previous + 1, p.target - 1);
    previous = p.target;
  }
  CloseRange(previous + 1, floor - 1);
  int keep[4] = {plan.channel_fd, plan.status_fd, plan.children_fd, plan.join_user_fd};
  CloseAbove(floor, keep);
}

// Before the identity switch: raising a hard limit needs CAP_SYS_RESOURCE.
void ApplyProcessAttributes(const ChildPlan& plan) {
  for (size_t i = 0; i < plan.rlimits.size(); ++i) {
    if (setrlimit(static_cast<__rlimit_resource>(plan.rlimits[i].first), &plan.rlimits[i].second) !=
        0) {
      Fail(plan, plan.rlimit_what[i].c_str(), nullptr, errno);
    }
  }
  if (plan.set_affinity && sched_setaffinity(0, sizeof(plan.affinity), &plan.affinity) != 0) {
    Fail(plan, "setting the CPU affinity", nullptr, errno);
  }
  if (plan.set_umask) umask(plan.umask);
}

}  // namespace

// After pivot_root, "/" is the container's root: RESOLVE_IN_ROOT keeps the
// walk inside it and RESOLVE_NO_MAGICLINKS refuses /proc/self/fd/N and its
// kin, even through a symlink in the image (CVE-2024-21626).
// Runs as the caller, after the identity switch: the kernel checks search
// permission on every directory of the walk, so nobody starts inside (and
// opens relative to) a directory they could not reach themselves, such as
// one below another user's 0700 home or a root-only directory reached
// through a bind of the host's /. With --fakeroot the walk is made by the
// namespace's root, whose map holds only the caller's own ids (their uid and
// subuid range), so it overrides nothing that belongs to anyone else.
void EnterCwd(const ChildPlan& plan) {
  int fd = OpenAt2(AT_FDCWD, plan.cwd.c_str(), O_PATH | O_DIRECTORY,
                   RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
  if (fd < 0) Fail(plan, "entering the working directory", plan.cwd.c_str(), errno);
  if (fchdir(fd) != 0) Fail(plan, "entering the working directory", plan.cwd.c_str(), errno);
  close(fd);
  char buf[PATH_MAX];
  long n = syscall(SYS_getcwd, buf, sizeof(buf));
  // The kernel prefixes "(unreachable)" to a cwd outside the root.
  if (n <= 0 || buf[0] != '/') {
    Fail(plan, "entering the working directory", "it is outside the container's root", EACCES);
  }
}

void CloseRange(long first, long last) {
  if (first <= last)
    syscall(SYS_close_range, static_cast<unsigned>(first), static_cast<unsigned>(last), 0);
}

void CloseAbove(int first, int (&keep)[4]) {
  // A four-element insertion sort: no library call in the child.
  for (int i = 1; i < 4; ++i) {
    for (int j = i; j > 0 && keep[j - 1] > keep[j]; --j) {
      int t = keep[j];
      keep[j] = keep[j - 1];
      keep[j - 1] = t;
    }
  }
  long next = first;
  for (int fd : keep) {
    if (fd < first) continue;
    CloseRange(next, fd - 1);
    next = fd + 1;
  }
  CloseRange(next, ~0U);
}

void Fail(const ChildPlan& plan, const char* what, const char* detail, int err) {
  ChildMessage msg;
  msg.kind = ChildMessage::kFailed;
  msg.err = err;
  size_t len = 0;
  Append(msg, len, what);
  if (detail != nullptr) {
    Append(msg, len, ": ");
    Append(msg, len, detail);
  }
  send(plan.channel_fd, &msg, sizeof(msg), MSG_NOSIGNAL);
  _exit(kFailedExit);
}

void FailFs(const ChildPlan& plan, const char* what, int fs_fd, int err) {
  char log[256];
  ssize_t n = read(fs_fd, log, sizeof(log) - 1);
  if (n <= 0) Fail(plan, what, nullptr, err);
  while (n > 0 && log[n - 1] == '\n') --n;
  log[n] = '\0';
  Fail(plan, what, log, err);
}

void Send(const ChildPlan& plan, uint32_t kind) {
  ChildMessage msg;
  msg.kind = kind;
  send(plan.channel_fd, &msg, sizeof(msg), MSG_NOSIGNAL);
}

int OpenAt2(int dirfd, const char* path, uint64_t flags, uint64_t resolve) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.resolve = resolve;
  // EAGAIN: a concurrent rename made RESOLVE_IN_ROOT unsure; bounded retries.
  int fd = -1;
  for (int attempt = 0; attempt < 64; ++attempt) {
    fd = static_cast<int>(syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
    if (fd >= 0 || (errno != EINTR && errno != EAGAIN)) break;
  }
  return fd;
}

}  // namespace child

void ChildMain(ChildPlan& plan) {
  child::ResetSignalHandlers();
  child::JoinCgroups(plan);
  // Before a join enters the container's mount namespace: its /proc is the
  // container's PID namespace's, where this process has no thread-self.
  child::OpenChildrenList(plan);
  if (plan.join) {
    child::EnterLiveContainer(plan);
  } else {
    child::SetUpNetwork(plan);
    child::SetHostname(plan);
    child::BuildRootAndPivot(plan);
  }
  child::PlaceDescriptors(plan);
  child::ApplyProcessAttributes(plan);
  child::StartPayload(plan);
}

}  // namespace berth::daemon::launch
