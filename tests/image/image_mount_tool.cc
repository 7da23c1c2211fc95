// Mounts an image the way berthd does and runs a shell command on the mount,
// timing each step; for bench/image_read.sh. Not a test.
//
// usage: image_mount_tool [--user-mode] [--policy trusted|always|never]
//                         [--threads N] STATE_DIR IMAGE [COMMAND]
// COMMAND runs with sh -c, with $ROOT set to the mounted root directory.
// Prints "first_acquire_ms=.. hit_acquire_ms=.. remount_acquire_ms=.. run_s=.."
// plus the cache's counters.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "daemon/image/mount_cache.h"
#include "daemon/image/open_as_caller.h"
#include "daemon/image/user_namespace.h"
#include "spdlog/spdlog.h"

using namespace berth::daemon;
using namespace berth::daemon::image;

namespace {

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int Die(const std::string& what) {
  std::fprintf(stderr, "image_mount_tool: %s\n", what.c_str());
  return 2;
}

absl::StatusOr<std::shared_ptr<MountLease>> Acquire(MountCache& cache, const std::string& image) {
  const CallerCreds me{geteuid(), getegid(), {}};
  auto fd = OpenAsCaller(me, image, O_RDONLY);
  if (!fd.ok()) return fd.status();
  return cache.Acquire(std::move(fd).value(), image, geteuid());
}

int RunCommand(const std::string& command, const std::string& root) {
  pid_t pid = fork();
  if (pid == 0) {
    setenv("ROOT", root.c_str(), 1);
    execl("/bin/sh", "sh", "-c", command.c_str(), nullptr);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  bool user_mode = false;
  ImagePolicy policy;
  int i = 1;
  for (; i < argc && std::strncmp(argv[i], "--", 2) == 0; ++i) {
    std::string flag = argv[i];
    if (flag == "--user-mode") {
      user_mode = true;
    } else if (flag == "--policy" && i + 1 < argc) {
      std::string p = argv[++i];
      policy.kernel_squashfs = p == "always"  ? ImagePolicy::KernelSquashfs::kAlways
                               : p == "never" ? ImagePolicy::KernelSquashfs::kNever
                                              : ImagePolicy::KernelSquashfs::kTrusted;
    } else if (flag == "--threads" && i + 1 < argc) {
      policy.fuse_threads = std::atoi(argv[++i]);
    } else {
      return Die("unknown flag " + flag);
    }
  }
  if (argc - i < 2) return Die("usage: image_mount_tool [flags] STATE_DIR IMAGE [COMMAND]");
  const std::string state = argv[i], image = argv[i + 1];
  const std::string command = argc - i > 2 ? argv[i + 2] : "";
  if (user_mode) {
    if (auto st = EnterUserModeNamespaces(); !st.ok()) return Die(std::string(st.message()));
  }
  MountCache cache(state, user_mode ? DaemonMode::kUser : DaemonMode::kSystem, policy);
  if (auto st = cache.Init(); !st.ok()) return Die(std::string(st.message()));

  auto start = std::chrono::steady_clock::now();
  auto lease = Acquire(cache, image);
  if (!lease.ok()) return Die(std::string(lease.status().message()));
  const double first = Since(start);
  start = std::chrono::steady_clock::now();
  auto hit = Acquire(cache, image);
  const double hit_time = Since(start);
  const std::string root = (*lease)->root();
  start = std::chrono::steady_clock::now();
  int rc = command.empty() ? 0 : RunCommand(command, root);
  const double run = Since(start);
  lease->reset();
  hit->reset();
  start = std::chrono::steady_clock::now();
  auto remount = Acquire(cache, image);
  const double remount_time = Since(start);
  if (!remount.ok()) return Die(std::string(remount.status().message()));
  const MountBackend backend = (*remount)->backend();
  remount->reset();
  MountCacheStats s = cache.stats();
  std::printf(
      "backend=%s first_acquire_ms=%.2f hit_acquire_ms=%.3f remount_acquire_ms=%.2f run_s=%.3f "
      "rc=%d mounts=%lld hashes=%lld copies=%lld reused_copies=%lld\n",
      MountBackendName(backend), first * 1e3, hit_time * 1e3, remount_time * 1e3, run, rc,
      (long long)s.mounts, (long long)s.hashes, (long long)s.copies, (long long)s.reused_copies);
  return rc;
}
