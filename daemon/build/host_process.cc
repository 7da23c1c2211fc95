#include "daemon/build/host_process.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/launch/id_maps.h"
#include "daemon/launch/prepare.h"

namespace berth::daemon::build {
namespace {

constexpr int kSetupTimeoutMs = 30'000;

// What the child reads: everything prepared in the parent (the child must
// not allocate; see daemon/launch/child.h).
struct ChildArgs {
  int sync_fd = -1;  // SOCK_SEQPACKET, close-on-exec
  bool set_groups = true;
  const std::vector<gid_t>* groups = nullptr;
  int program_fd = -1;
  int cwd_fd = -1;
  std::vector<std::pair<int, int>> fds;  // source, target: sources already above every target
  int max_target = 2;
  std::vector<const char*> argv, envp;
};

struct Report {
  int32_t step = 0;  // 0: need maps; 1..: the failed step
  int32_t err = 0;
};

enum Step : int32_t {
  kNeedMaps = 0,
  kSetGroups,
  kUnshareUser,
  kNoMaps,
  kSetIds,
  kUnshareNs,
  kFork,
  kPlaceFds,
  kChdir,
  kNoNewPrivs,
  kExec,
};

const char* StepName(int32_t step) {
  switch (step) {
    case kSetGroups:
      return "setting the caller's groups";
    case kUnshareUser:
      return "creating the user namespace";
    case kNoMaps:
      return "waiting for the id maps";
    case kSetIds:
      return "becoming root of the user namespace";
    case kUnshareNs:
      return "creating the mount and PID namespaces";
    case kFork:
      return "starting the program";
    case kPlaceFds:
      return "placing descriptors";
    case kChdir:
      return "entering the working directory";
    case kNoNewPrivs:
      return "setting no_new_privs";
    case kExec:
      return "exec";
  }
  return "?";
}

[[noreturn]] void Fail(const ChildArgs& a, int32_t step, int err) {
  Report r{step, err};
  (void)::send(a.sync_fd, &r, sizeof(r), MSG_NOSIGNAL);
  ::_exit(127);
}

// The program, as PID 1 of the new PID namespace.
[[noreturn]] void RunProgram(const ChildArgs& a) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  for (const auto& [src, target] : a.fds) {
    if (::dup2(src, target) < 0) Fail(a, kPlaceFds, errno);
  }
  // Numbers up to the highest target that are no target are closed; all
  // above it (the sources, the sync socket, the program) close at exec.
  for (int fd = 0; fd <= a.max_target; ++fd) {
    bool target = false;
    for (const auto& p : a.fds) target |= p.second == fd;
    if (!target) ::close(fd);
  }
  if (::syscall(SYS_close_range, a.max_target + 1, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    Fail(a, kPlaceFds, errno);
  }
  if (a.cwd_fd >= 0 && ::fchdir(a.cwd_fd) != 0) Fail(a, kChdir, errno);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) Fail(a, kNoNewPrivs, errno);
  ::syscall(SYS_execveat, a.program_fd, "", a.argv.data(), a.envp.data(), AT_EMPTY_PATH);
  Fail(a, kExec, errno);
}

[[noreturn]] void ChildMain(const ChildArgs& a) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (a.set_groups && ::syscall(SYS_setgroups, a.groups->size(), a.groups->data()) != 0) {
    Fail(a, kSetGroups, errno);
  }
  // The daemon opens /proc/<pid>/uid_map; in user mode it owns that file
  // only while the child is dumpable.
  ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  if (::unshare(CLONE_NEWUSER) != 0) Fail(a, kUnshareUser, errno);
  Report need{kNeedMaps, 0};
  if (::send(a.sync_fd, &need, sizeof(need), MSG_NOSIGNAL) != sizeof(need)) ::_exit(127);
  char done = 0;
  if (::recv(a.sync_fd, &done, 1, 0) != 1) Fail(a, kNoMaps, EPROTO);
  if (::syscall(SYS_setresgid, 0, 0, 0) != 0 || ::syscall(SYS_setresuid, 0, 0, 0) != 0) {
    Fail(a, kSetIds, errno);
  }
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (::unshare(CLONE_NEWNS | CLONE_NEWPID) != 0) Fail(a, kUnshareNs, errno);
  pid_t pid = static_cast<pid_t>(::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
  if (pid < 0) Fail(a, kFork, errno);
  if (pid == 0) RunProgram(a);
  // Nothing of the daemon's stays open here (a client connection held by
  // this waiting process would never see its end of file).
  ::syscall(SYS_close_range, 0, ~0U, 0);
  int status = 0;
  while (::syscall(SYS_wait4, pid, &status, 0, nullptr) < 0 && errno == EINTR) {
  }
  ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

absl::Status WriteProc(pid_t pid, const char* name, const std::string& text) {
  std::string path = absl::StrCat("/proc/", pid, "/", name);
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_WRONLY));
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus(path, errno);
  }
  return absl::OkStatus();
}

// Privilege: CAP_SETUID/CAP_SETGID over the daemon's user namespace. The
// lines were checked by launch's IdMapText (never host 0, never the
// caller twice). One gid line: setgroups denied, so root inside cannot
// shed the caller's groups.
absl::Status WriteMaps(pid_t pid, const HostProcessSpec& s) {
  ASSIGN_OR_RETURN(std::string uid_map, launch::IdMapText(s.uid_map, 0, s.uid, "uid"));
  ASSIGN_OR_RETURN(std::string gid_map, launch::IdMapText(s.gid_map, 0, s.gid, "gid"));
  if (s.gid_map.size() <= 1) RETURN_IF_ERROR(WriteProc(pid, "setgroups", "deny"));
  RETURN_IF_ERROR(WriteProc(pid, "gid_map", gid_map));
  return WriteProc(pid, "uid_map", uid_map);
}

absl::StatusOr<Report> Receive(int fd, bool& closed) {
  pollfd p{fd, POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&p, 1, kSetupTimeoutMs);
  } while (ready < 0 && errno == EINTR);
  if (ready <= 0) return absl::DeadlineExceededError("the process's setup timed out");
  Report r;
  ssize_t n = ::recv(fd, &r, sizeof(r), 0);
  closed = n == 0;
  if (n != 0 && n != sizeof(r)) return absl::InternalError("malformed report");
  return r;
}

// Sources are moved above every target first, so that placing one never
// overwrites another that is still to be placed.
absl::Status PlanFds(HostProcessSpec& s, ChildArgs& a, int sync_fd, std::vector<UniqueFd>& held) {
  for (const auto& [fd, target] : s.fds) a.max_target = std::max(a.max_target, target);
  int floor = a.max_target + 1;
  for (const auto& [fd, target] : s.fds) {
    int high = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, floor);
    if (high < 0) return ErrnoStatus("dup", errno);
    held.emplace_back(high);
    a.fds.emplace_back(high, target);
  }
  auto lift = [&](int fd) -> absl::StatusOr<int> {
    if (fd < 0) return -1;
    int high = ::fcntl(fd, F_DUPFD_CLOEXEC, floor);
    if (high < 0) return ErrnoStatus("dup", errno);
    held.emplace_back(high);
    return high;
  };
  ASSIGN_OR_RETURN(a.sync_fd, lift(sync_fd));
  ASSIGN_OR_RETURN(a.program_fd, lift(s.program.get()));
  ASSIGN_OR_RETURN(a.cwd_fd, lift(s.cwd ? s.cwd.get() : -1));
  return absl::OkStatus();
}

absl::StatusOr<std::pair<pid_t, UniqueFd>> Clone(const ChildArgs& a, const std::string& cgroup) {
  UniqueFd cgroup_fd;
  if (!cgroup.empty()) {
    ASSIGN_OR_RETURN(cgroup_fd, OpenFile(cgroup, O_PATH | O_DIRECTORY));
  }
  int pidfd = -1;
  clone_args args{};
  args.flags = CLONE_PIDFD | (cgroup_fd ? CLONE_INTO_CGROUP : 0);
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  args.cgroup = cgroup_fd ? static_cast<uint64_t>(cgroup_fd.get()) : 0;
  long pid = ::syscall(SYS_clone3, &args, sizeof(args));
  if (pid < 0) return ErrnoStatus("clone3", errno);
  if (pid == 0) ChildMain(a);
  return std::make_pair(static_cast<pid_t>(pid), UniqueFd(pidfd));
}

}  // namespace

HostProcess::HostProcess(HostProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      pidfd_(std::move(o.pidfd_)),
      reaped_(std::exchange(o.reaped_, true)) {}

HostProcess& HostProcess::operator=(HostProcess&& o) noexcept {
  if (this != &o) {
    Kill();
    pid_ = std::exchange(o.pid_, -1);
    pidfd_ = std::move(o.pidfd_);
    reaped_ = std::exchange(o.reaped_, true);
  }
  return *this;
}

HostProcess::~HostProcess() {
  Kill();
}

void HostProcess::Kill() {
  if (reaped_ || !pidfd_) return;
  ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
  (void)Wait();
}

absl::StatusOr<int> HostProcess::Wait() {
  siginfo_t info{};
  int rc;
  do {
    rc = ::waitid(static_cast<idtype_t>(P_PIDFD), pidfd_.get(), &info, WEXITED);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return ErrnoStatus("waiting for a build process", errno);
  reaped_ = true;
  return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
}

absl::StatusOr<HostProcess> StartHostProcess(HostProcessSpec s) {
  if (!s.program || s.argv.empty()) return absl::InvalidArgumentError("no program");
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return ErrnoStatus("socketpair", errno);
  }
  UniqueFd ours(pair[0]), theirs(pair[1]);
  ChildArgs a;
  std::vector<UniqueFd> held;
  RETURN_IF_ERROR(PlanFds(s, a, theirs.get(), held));
  a.set_groups = launch::GetHostFacts().can_setgroups;
  a.groups = &s.groups;
  for (const std::string& arg : s.argv) a.argv.push_back(arg.c_str());
  a.argv.push_back(nullptr);
  for (const std::string& e : s.env) a.envp.push_back(e.c_str());
  a.envp.push_back(nullptr);
  ASSIGN_OR_RETURN(auto cloned, Clone(a, s.cgroup_dir));
  HostProcess process(cloned.first, std::move(cloned.second));
  process.reaped_ = false;
  held.clear();
  theirs.Reset();
  s.fds.clear();
  for (;;) {
    bool closed = false;
    ASSIGN_OR_RETURN(Report r, Receive(ours.get(), closed));
    if (closed) return process;  // exec'd: the close-on-exec socket is gone
    if (r.step != kNeedMaps) {
      return ErrnoStatus(absl::StrCat(s.what, ": ", StepName(r.step),
                                      r.step == kExec ? absl::StrCat(" ", s.argv[0]) : ""),
                         r.err);
    }
    RETURN_IF_ERROR_CTX(WriteMaps(process.pid(), s), absl::StrCat(s.what, ": writing the id maps"));
    char done = 1;
    if (::send(ours.get(), &done, 1, MSG_NOSIGNAL) != 1) {
      return ErrnoStatus(absl::StrCat(s.what, ": starting"), errno);
    }
  }
}

}  // namespace berth::daemon::build
