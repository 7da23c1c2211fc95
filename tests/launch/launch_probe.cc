// launch_probe: runs containers through berth_daemon_launch the way the
// service layer will, for the shell tests (launch_test.sh) and benchmarks.
//
//   launch_probe [options] ROOTFS [--] CMD [ARG...]
//
// It passes its own stdio (and --fd N), waits, and exits with the
// container's status; a launch failure prints "launch_probe: <error>" and
// exits 125 (127/126 when the exec itself failed). SIGTERM, SIGINT, SIGHUP
// and SIGUSR1 it receives are forwarded with Container::Signal.
//
// To show that the launcher applies the caller's process state rather than
// inheriting the launcher's, it records its own affinity, umask and limits
// for the spec and then changes its own (all CPUs, umask 077, the widest
// NOFILE, SIGPIPE ignored, the forwarded signals blocked), like a daemon
// whose threads do not look like the client.
//
// Options: --bind SRC[:DST[:ro]] --contain --minimal-dev --fakeroot --userns --no-pid --ipc
// --hostname H --no-init --writable-tmpfs BYTES --cwd DIR --home SRC
// --home-dest DIR --no-home --no-mount proc,sys,dev,tmp,etc,home,cwd --fd N
// --pty (a fresh pty as stdio and controlling terminal) --cgroup DIR
// --cgroup-of-self --env K=V --time (print Launch()'s duration)
// --as-user NAME (system mode: the probe stays root, the container and the
// opening of bind sources are that user's) --user-mode (first enter a user +
// mount namespace with an identity map, as berthd does in user mode)
// --malloc-threads N (threads that malloc all along) --ballast-mib N (a
// touched heap of N MiB, like a daemon's) --repeat N
// --parallel N (N threads, each --repeat launches; all must exit 0).
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/launch/launch.h"
#include "tests/launch/probe_setup.h"

namespace launch = berth::daemon::launch;
using namespace launch_probe;

namespace {

void WriteFile(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    Die(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  close(fd);
}

// What berthd does at start in user mode: a user namespace where the user
// keeps their uid (identity map) with full capabilities, and a mount
// namespace of its own.
void EnterUserMode() {
  uid_t uid = getuid();
  gid_t gid = getgid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
    Die(absl::StrCat("unshare: ", std::strerror(errno)));
  WriteFile("/proc/self/setgroups", "deny");
  WriteFile("/proc/self/uid_map", absl::StrCat(uid, " ", uid, " 1"));
  WriteFile("/proc/self/gid_map", absl::StrCat(gid, " ", gid, " 1"));
}

// Records the caller's process state in the spec, then stops looking like it.
void RecordProcessState(launch::LaunchSpec& spec) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) spec.affinity = set;
  spec.umask = umask(077);
  for (int r :
       {RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_STACK, RLIMIT_CORE, RLIMIT_MEMLOCK, RLIMIT_AS}) {
    rlimit lim;
    if (getrlimit(r, &lim) == 0) spec.rlimits.emplace_back(r, lim);
  }
  CPU_ZERO(&set);
  for (int c = 0; c < CPU_SETSIZE; ++c) CPU_SET(c, &set);
  sched_setaffinity(0, sizeof(set), &set);
  rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  signal(SIGPIPE, SIG_IGN);
}

// A new pty pair: the master (returned) and its slave (in *slave).
int OpenPty(int* slave) {
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  char name[64];
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 ||
      ptsname_r(master, name, sizeof(name)) != 0) {
    Die(absl::StrCat("pty: ", std::strerror(errno)));
  }
  *slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (*slave < 0) Die(absl::StrCat(name, ": ", std::strerror(errno)));
  return master;
}

// Copies what is available on the pty master to stdout; false at its end.
bool RelayPty(int master) {
  char buf[4096];
  ssize_t n = read(master, buf, sizeof(buf));
  if (n <= 0) return false;
  return write(1, buf, static_cast<size_t>(n)) == n;
}

int ExitCodeFor(const absl::Status& st) {
  if (st.message().rfind("exec ", 0) != 0) return 125;
  return absl::IsNotFound(st) ? 127 : 126;
}

// Waits for the container, forwarding signals and relaying its pty.
int Supervise(launch::Container& container, int signals, int master) {
  for (;;) {
    pollfd fds[3] = {{signals, POLLIN, 0}, {container.pidfd(), POLLIN, 0}, {master, POLLIN, 0}};
    if (poll(fds, master >= 0 ? 3 : 2, -1) < 0) continue;
    if (master >= 0 && fds[2].revents != 0 && !RelayPty(master)) {
      close(master);
      master = -1;
    }
    if (fds[1].revents != 0) break;
    signalfd_siginfo si;
    if (fds[0].revents != 0 && read(signals, &si, sizeof(si)) == sizeof(si)) {
      (void)container.Signal(static_cast<int>(si.ssi_signo));
    }
  }
  if (master >= 0) {  // what the payload wrote just before exiting
    fcntl(master, F_SETFL, O_NONBLOCK);
    while (RelayPty(master)) {
    }
    close(master);
  }
  auto exited = container.Wait();
  if (!exited.ok()) Die(std::string(exited.status().message()));
  return exited->ShellStatus();
}

int RunOne(const Options& o, const Setup& setup, int signals) {
  int slave = -1;
  int master = o.pty ? OpenPty(&slave) : -1;
  launch::LaunchSpec spec = BuildSpec(o, setup, slave);
  auto start = std::chrono::steady_clock::now();
  auto container = launch::Launch(std::move(spec));
  if (o.timing) {
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "launch_probe: Launch() %.3f ms, pid %d, payload pid %d\n", ms,
                 container.ok() ? container->pid() : -1,
                 container.ok() ? container->payload_pid() : -1);
  }
  if (slave >= 0) close(slave);
  if (!container.ok())
    Die(std::string(container.status().message()), ExitCodeFor(container.status()));
  return Supervise(*container, signals, master);
}

// N threads launching at once, as gRPC's threads will; all must exit 0.
int RunParallel(const Options& o, const Setup& setup) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  threads.reserve(o.parallel);
  for (int t = 0; t < o.parallel; ++t) {
    threads.emplace_back([&] {
      for (int round = 0; round < o.repeat; ++round) {
        auto container = launch::Launch(BuildSpec(o, setup, -1));
        auto exited = container.ok() ? container->Wait() : container.status();
        if (!exited.ok() || exited->ShellStatus() != 0) {
          std::string why = exited.ok() ? absl::StrCat("status ", exited->ShellStatus())
                                        : std::string(exited.status().message());
          std::fprintf(stderr, "launch_probe: %s\n", why.c_str());
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  return failures.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  ParseArgs(argc, argv, o);
  std::vector<char> ballast(static_cast<size_t>(o.ballast_mib) << 20, 1);
  if (o.user_mode) EnterUserMode();
  Setup setup = MakeSetup(o);
  RecordProcessState(o.settings);
  sigset_t forwarded;
  sigemptyset(&forwarded);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&forwarded, s);
  sigprocmask(SIG_BLOCK, &forwarded, nullptr);  // before any thread starts
  int signals = signalfd(-1, &forwarded, SFD_CLOEXEC);

  std::atomic<bool> stop{false};
  std::vector<std::thread> noise;
  noise.reserve(o.malloc_threads);
  for (int t = 0; t < o.malloc_threads; ++t) {
    noise.emplace_back([&stop] {
      unsigned seed = 1;
      while (!stop.load()) free(malloc(rand_r(&seed) % 4096 + 1));
    });
  }
  int status = 0;
  if (o.parallel > 0) {
    status = RunParallel(o, setup);
  } else {
    for (int round = 0; round < o.repeat; ++round) status = RunOne(o, setup, signals);
  }
  stop = true;
  for (auto& t : noise) t.join();
  return status;
}
