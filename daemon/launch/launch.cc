#include "daemon/launch/launch.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/launch/child.h"
#include "daemon/launch/launch_hooks.h"
#include "daemon/launch/prepare.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace berth::daemon::launch {
namespace {

// Generous: the child only mounts and execs, but a FUSE-backed image (user
// mode) may be slow to answer its first lookup.
constexpr int kSetupTimeoutMs = 60'000;
// How long the init may take to end the container's processes when killed.
constexpr int kInitEndMillis = 5'000;

// Privilege: the daemon's. All signals are blocked across clone3 so that no
// daemon signal handler can run in the child before it resets them.
absl::StatusOr<std::pair<pid_t, UniqueFd>> CloneChild(ChildPlan& plan) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pidfd = -1;
  clone_args args{};
  args.flags = plan.clone_flags | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uintptr_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  if (plan.clone_into_cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(plan.clone_into_cgroup_fd);
  }
  long pid = ::syscall(SYS_clone3, &args, sizeof(args));
  if (pid == 0) ChildMain(plan);
  int err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    return ErrnoStatus(
        plan.clone_into_cgroup_fd >= 0 ? "clone3 into the caller's cgroup" : "clone3", err);
  }
  return std::make_pair(static_cast<pid_t>(pid), UniqueFd(pidfd));
}

absl::Status WriteProcFile(pid_t pid, const char* name, const std::string& text) {
  std::string path = absl::StrCat("/proc/", pid, "/", name);
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_WRONLY));
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus(path, errno);
  }
  return absl::OkStatus();
}

// Privilege: needs CAP_SETUID/CAP_SETGID over the daemon's user namespace,
// which owns the child's new one. The maps were built and checked by
// PrepareLaunch (id_maps.h): the inside id (0 with fakeroot) is the caller's
// id outside, plus, for fakeroot with subordinate ranges, the caller's own
// range from /etc/subuid and /etc/subgid. With single-id maps setgroups is
// denied so root inside cannot shed the caller's groups (which may be what
// denies it access to something).
absl::Status WriteIdMaps(pid_t pid, const ChildPlan& plan) {
  if (plan.deny_setgroups) RETURN_IF_ERROR(WriteProcFile(pid, "setgroups", "deny"));
  RETURN_IF_ERROR(WriteProcFile(pid, "gid_map", plan.gid_map));
  return WriteProcFile(pid, "uid_map", plan.uid_map);
}

struct Received {
  ssize_t size = 0;
  ChildMessage msg;
  pid_t sender = -1;
};

absl::StatusOr<Received> ReceiveMessage(int fd) {
  pollfd pfd{fd, POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&pfd, 1, kSetupTimeoutMs);
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) return ErrnoStatus("waiting for the container", errno);
  if (ready == 0) return absl::DeadlineExceededError("the container's setup timed out");
  Received r;
  iovec iov{&r.msg, sizeof(r.msg)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof(control);
  do {
    r.size = ::recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
  } while (r.size < 0 && errno == EINTR);
  if (r.size < 0) return ErrnoStatus("reading from the container", errno);
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
      ucred cred;
      std::memcpy(&cred, CMSG_DATA(c), sizeof(cred));
      r.sender = cred.pid;
    }
  }
  return r;
}

std::string DescribeWait(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return absl::StrCat("exit status ", info.si_status);
  return absl::StrCat("killed by signal ", info.si_status);
}

}  // namespace

Container::Container(pid_t pid, pid_t payload_pid, UniqueFd pidfd, UniqueFd status_fd,
                     bool has_init)
    : pid_(pid),
      payload_pid_(payload_pid),
      pidfd_(std::move(pidfd)),
      status_fd_(std::move(status_fd)),
      has_init_(has_init),
      reaped_(false) {}

Container& Container::operator=(Container&& other) noexcept {
  if (this != &other) {
    KillAndReap();
    pid_ = other.pid_;
    payload_pid_ = other.payload_pid_;
    pidfd_ = std::move(other.pidfd_);
    status_fd_ = std::move(other.status_fd_);
    has_init_ = other.has_init_;
    init_serving_ = other.init_serving_;
    reaped_ = std::exchange(other.reaped_, true);
    poststop_ = std::move(other.poststop_);
    hook_output_ = std::move(other.hook_output_);
    held_ = std::move(other.held_);
  }
  return *this;
}

Container::Container(Container&& other) noexcept
    : pid_(other.pid_),
      payload_pid_(other.payload_pid_),
      pidfd_(std::move(other.pidfd_)),
      status_fd_(std::move(other.status_fd_)),
      has_init_(other.has_init_),
      init_serving_(other.init_serving_),
      reaped_(std::exchange(other.reaped_, true)),
      poststop_(std::move(other.poststop_)),
      hook_output_(std::move(other.hook_output_)),
      held_(std::move(other.held_)) {}

Container::~Container() {
  KillAndReap();
}

void EndContainer(int pidfd) {
  ::syscall(SYS_pidfd_send_signal, pidfd, kEndContainerSignal, nullptr, 0);
}

absl::Status Container::Kill() {
  return Signal(init_serving_ ? kEndContainerSignal : SIGKILL);
}

void Container::KillAndReap() {
  if (reaped_ || !pidfd_) return;
  // The init ends everything left of the container before it exits; SIGKILL
  // to it would orphan what is left to the host's init (without a PID
  // namespace). SIGKILL is the fallback for an init that does not end.
  bool ended = false;
  if (init_serving_ &&
      ::syscall(SYS_pidfd_send_signal, pidfd_.get(), kEndContainerSignal, nullptr, 0) == 0) {
    pollfd exited{pidfd_.get(), POLLIN, 0};
    ended = ::poll(&exited, 1, kInitEndMillis) == 1;
  }
  if (!ended) ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
  siginfo_t info{};
  while (::waitid(static_cast<idtype_t>(P_PIDFD), pidfd_.get(), &info, WEXITED) != 0 &&
         errno == EINTR) {
  }
  reaped_ = true;
  RunLoggedHooks(poststop_, pid_, "stopped", hook_output_.get());
}

void Container::Detach() {
  reaped_ = true;
  pidfd_.Reset();
  status_fd_.Reset();
  poststop_.clear();
}

absl::Status Container::Signal(int sig) {
  if (reaped_) return absl::FailedPreconditionError("the container has been reaped");
  if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) != 0) {
    return ErrnoStatus(absl::StrCat("signalling the container (", sig, ")"), errno);
  }
  return absl::OkStatus();
}

absl::StatusOr<ExitStatus> Container::Wait() {
  if (reaped_) return absl::FailedPreconditionError("the container has been reaped");
  siginfo_t info{};
  int rc;
  do {
    rc = ::waitid(static_cast<idtype_t>(P_PIDFD), pidfd_.get(), &info, WEXITED);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return ErrnoStatus("waiting for the container", errno);
  reaped_ = true;
  RunLoggedHooks(poststop_, pid_, "stopped", hook_output_.get());
  ExitStatus out;
  int raw = 0;
  // The init reports the payload's own wait status, signal included.
  if (has_init_ && status_fd_ && ::fcntl(status_fd_.get(), F_SETFL, O_NONBLOCK) == 0 &&
      ::read(status_fd_.get(), &raw, sizeof(raw)) == sizeof(raw)) {
    if (WIFSIGNALED(raw)) {
      out.signal = WTERMSIG(raw);
      out.core_dumped = WCOREDUMP(raw);
    } else {
      out.exit_code = WEXITSTATUS(raw);
    }
    return out;
  }
  if (info.si_code == CLD_EXITED) {
    out.exit_code = info.si_status;
  } else {
    out.signal = info.si_status;
    out.core_dumped = info.si_code == CLD_DUMPED;
  }
  return out;
}

namespace {

// A holder's namespaces, by what its plan made (the mount namespace always).
absl::Status OpenHeldNamespaces(pid_t pid, const ChildPlan& plan, LiveNamespaces& ns) {
  auto open = [pid](const char* name, UniqueFd& out) -> absl::Status {
    auto fd = OpenFile(absl::StrCat("/proc/", pid, "/ns/", name), O_RDONLY);
    if (!fd.ok()) {
      return Annotate(fd.status(), absl::StrCat("opening the container's ", name, " namespace"));
    }
    out = *std::move(fd);
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(open("mnt", ns.mnt));
  if (plan.clone_flags & CLONE_NEWIPC) RETURN_IF_ERROR(open("ipc", ns.ipc));
  if (plan.clone_flags & CLONE_NEWUTS) RETURN_IF_ERROR(open("uts", ns.uts));
  if ((plan.clone_flags & CLONE_NEWNET) || plan.netns_fd >= 0) RETURN_IF_ERROR(open("net", ns.net));
  if (plan.clone_flags & CLONE_NEWPID) RETURN_IF_ERROR(open("pid", ns.pid));
  if (plan.user_namespace) RETURN_IF_ERROR(open("user", ns.user));
  return absl::OkStatus();
}

// Follows the child's reports until the payload is exec'd (end of file
// after kExecuting), answering its request for id maps on the way.
absl::StatusOr<pid_t> AwaitExec(PreparedLaunch& p, pid_t pid, int pidfd) {
  int fd = p.channel_parent.get();
  pid_t payload = -1;
  for (;;) {
    ASSIGN_OR_RETURN(Received r, ReceiveMessage(fd));
    if (r.size == 0) break;
    if (r.size != sizeof(ChildMessage))
      return absl::InternalError("malformed message from the container");
    r.msg.text[sizeof(r.msg.text) - 1] = '\0';
    switch (r.msg.kind) {
      case ChildMessage::kFailed:
        if (r.msg.err == 0) return absl::FailedPreconditionError(r.msg.text);
        return ErrnoStatus(r.msg.text, r.msg.err);
      case ChildMessage::kHookState:
        RETURN_IF_ERROR(AnswerHookState(p.hooks, pid, r.msg.err, fd));
        break;
      case ChildMessage::kNeedIdMaps: {
        // The payload makes the namespace: the init's child when there is one.
        pid_t in_namespace = r.sender > 0 ? r.sender : pid;
        RETURN_IF_ERROR_CTX(WriteIdMaps(in_namespace, p.plan),
                            "writing the user namespace's id maps");
        ChildMessage done;
        done.kind = ChildMessage::kIdMapsDone;
        if (::send(fd, &done, sizeof(done), MSG_NOSIGNAL) != sizeof(done)) {
          return ErrnoStatus("answering the container", errno);
        }
        break;
      }
      case ChildMessage::kHoldReady: {
        RETURN_IF_ERROR(OpenHeldNamespaces(pid, p.plan, p.held));
        ChildMessage opened;
        opened.kind = ChildMessage::kHoldOpened;
        if (::send(fd, &opened, sizeof(opened), MSG_NOSIGNAL) != sizeof(opened)) {
          return ErrnoStatus("answering the container", errno);
        }
        break;
      }
      case ChildMessage::kExecuting:
        payload = r.sender;
        break;
      default:
        return absl::InternalError("unknown message from the container");
    }
  }
  if (payload > 0) return payload;
  // It ended without a word: a crash. Say how it ended.
  siginfo_t info{};
  if (::waitid(static_cast<idtype_t>(P_PIDFD), pidfd, &info, WEXITED | WNOWAIT) != 0) {
    return ErrnoStatus("the container's setup ended unexpectedly", errno);
  }
  return absl::InternalError(
      absl::StrCat("the container's setup ended unexpectedly (", DescribeWait(info), ")"));
}

}  // namespace

absl::StatusOr<Container> Container::StartPrepared(PreparedLaunch& prepared, LaunchSpec& spec) {
  ASSIGN_OR_RETURN(auto child, CloneChild(prepared.plan));
  auto& [pid, pidfd] = child;
  int pidfd_number = pidfd.get();
  Container container(pid, -1, std::move(pidfd), std::move(prepared.status_read),
                      prepared.plan.run_init);
  // The child holds its own copies; ours would keep mounts and pipes alive.
  prepared.owned.clear();
  prepared.session_fd.Reset();
  prepared.channel_child.Reset();
  prepared.status_write.Reset();
  prepared.image_fd.Reset();
  spec.fds.clear();
  ASSIGN_OR_RETURN(container.payload_pid_, AwaitExec(prepared, pid, pidfd_number));
  if (prepared.held.mnt.valid()) {
    container.held_ = std::make_unique<LiveNamespaces>(std::move(prepared.held));
  }
  if (!prepared.plan.run_init) container.payload_pid_ = pid;
  container.init_serving_ = prepared.plan.run_init;
  RunLoggedHooks(prepared.hooks.poststart, pid, "running", prepared.hooks.output.get());
  container.poststop_ = std::move(prepared.hooks.poststop);
  container.hook_output_ = std::move(prepared.hooks.output);
  return container;
}

absl::StatusOr<Container> Launch(LaunchSpec spec) {
  ASSIGN_OR_RETURN(std::unique_ptr<PreparedLaunch> prepared, PrepareLaunch(spec));
  return Container::StartPrepared(*prepared, spec);
}

absl::StatusOr<Container> Join(LaunchSpec spec, const LiveNamespaces& ns) {
  ASSIGN_OR_RETURN(std::unique_ptr<PreparedLaunch> prepared, PrepareJoin(spec, ns));
  return Container::StartPrepared(*prepared, spec);
}

}  // namespace berth::daemon::launch
