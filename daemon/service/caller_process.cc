#include "daemon/service/caller_process.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::daemon {
namespace {

constexpr int kLimits[] = {RLIMIT_CPU,     RLIMIT_FSIZE,  RLIMIT_DATA,       RLIMIT_STACK,
                           RLIMIT_CORE,    RLIMIT_NOFILE, RLIMIT_AS,         RLIMIT_NPROC,
                           RLIMIT_MEMLOCK, RLIMIT_LOCKS,  RLIMIT_SIGPENDING, RLIMIT_MSGQUEUE,
                           RLIMIT_NICE,    RLIMIT_RTPRIO, RLIMIT_RTTIME};

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return ErrnoStatus(path, errno);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool StillAlive(int pidfd) {
  return ::syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) == 0;
}

// The mount point of each cgroup hierarchy: "unified" for v2, else the
// comma-separated controller list as /proc/<pid>/cgroup names it.
std::vector<std::pair<std::string, std::string>> CgroupMounts(const std::string& mountinfo) {
  std::vector<std::pair<std::string, std::string>> mounts;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n')) {
    std::vector<absl::string_view> halves = absl::StrSplit(line, " - ");
    if (halves.size() != 2) continue;
    std::vector<absl::string_view> pre = absl::StrSplit(halves[0], ' ');
    std::vector<absl::string_view> post = absl::StrSplit(halves[1], ' ');
    if (pre.size() < 5 || post.size() < 3) continue;
    std::string mount_point(pre[4]);
    if (post[0] == "cgroup2") {
      mounts.emplace_back("", mount_point);
    } else if (post[0] == "cgroup") {
      for (absl::string_view opt : absl::StrSplit(post[2], ',')) {
        if (opt == "rw" || opt == "ro" || absl::StartsWith(opt, "release_agent")) continue;
        mounts.emplace_back(std::string(opt), mount_point);
      }
    }
  }
  return mounts;
}

}  // namespace

std::vector<std::string> CgroupDirsFromProcFile(const std::string& proc_cgroup,
                                                const std::string& mountinfo) {
  auto mounts = CgroupMounts(mountinfo);
  std::vector<std::string> dirs;
  for (absl::string_view line : absl::StrSplit(proc_cgroup, '\n', absl::SkipEmpty())) {
    // "hierarchy-ID:controller-list:path"
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3 || f[2].find("..") != absl::string_view::npos) continue;
    std::vector<absl::string_view> controllers = absl::StrSplit(f[1], ',');
    for (const auto& [name, mount_point] : mounts) {
      bool match = f[1].empty() ? name.empty()
                                : std::find(controllers.begin(), controllers.end(),
                                            absl::string_view(name)) != controllers.end();
      if (!match) continue;
      std::string dir = f[2] == "/" ? mount_point : absl::StrCat(mount_point, f[2]);
      if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) dirs.push_back(dir);
      break;
    }
  }
  return dirs;
}

absl::StatusOr<CallerProcess> ReadCallerProcess(pid_t pid, int pidfd) {
  CallerProcess p;
  std::string proc = absl::StrCat("/proc/", pid);
  ASSIGN_OR_RETURN(std::string cgroup, ReadSmallFile(proc + "/cgroup"));
  ASSIGN_OR_RETURN(std::string mountinfo, ReadSmallFile("/proc/self/mountinfo"));
  p.cgroup_dirs = CgroupDirsFromProcFile(cgroup, mountinfo);
  CPU_ZERO(&p.affinity);
  if (::sched_getaffinity(pid, sizeof p.affinity, &p.affinity) != 0) {
    return ErrnoStatus("reading the caller's CPU affinity", errno);
  }
  for (int resource : kLimits) {
    rlimit lim;
    if (::prlimit(pid, static_cast<__rlimit_resource>(resource), nullptr, &lim) != 0) {
      return ErrnoStatus("reading the caller's resource limits", errno);
    }
    p.rlimits.emplace_back(resource, lim);
  }
  // Everything above was read by pid: make sure it was still our caller.
  if (!StillAlive(pidfd)) {
    return absl::AbortedError("the calling process exited while its request was prepared");
  }
  return p;
}

}  // namespace berth::daemon
