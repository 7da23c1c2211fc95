#include "daemon/service/caller_process.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::daemon {
namespace {

// /proc/<pid>/limits lists RLIMIT_CPU..RLIMIT_RTTIME in resource order, as
// "%-25s %-20s %-20s %-10s". It is world-readable, where prlimit(2) on another
// user's process needs CAP_SYS_RESOURCE, which hardened hosts drop.
constexpr size_t kSoftColumn = 26, kHardColumn = 47, kColumnWidth = 20;

absl::StatusOr<rlim_t> ParseLimitValue(absl::string_view field) {
  field = absl::StripAsciiWhitespace(field);
  if (field == "unlimited") return RLIM_INFINITY;
  uint64_t v;
  if (!absl::SimpleAtoi(field, &v)) {
    return absl::InternalError(absl::StrCat("unexpected limit value '", field, "'"));
  }
  return static_cast<rlim_t>(v);
}

absl::StatusOr<std::vector<std::pair<int, rlimit>>> ParseLimits(const std::string& text) {
  std::vector<std::pair<int, rlimit>> out;
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  for (size_t i = 1; i < lines.size() && out.size() < RLIMIT_NLIMITS; ++i) {
    absl::string_view line = lines[i];
    if (line.size() < kHardColumn + 1) continue;
    ASSIGN_OR_RETURN(rlim_t soft, ParseLimitValue(line.substr(kSoftColumn, kColumnWidth)));
    ASSIGN_OR_RETURN(rlim_t hard, ParseLimitValue(line.substr(kHardColumn, kColumnWidth)));
    out.emplace_back(static_cast<int>(out.size()), rlimit{soft, hard});
  }
  if (out.size() != RLIMIT_NLIMITS) {
    return absl::InternalError("unexpected /proc/<pid>/limits format");
  }
  return out;
}

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
  ASSIGN_OR_RETURN(std::string limits, ReadSmallFile(proc + "/limits"));
  auto parsed = ParseLimits(limits);
  if (!parsed.ok()) return Annotate(parsed.status(), "reading the caller's resource limits");
  p.rlimits = *std::move(parsed);
  // Everything above was read by pid: make sure it was still our caller.
  if (!StillAlive(pidfd)) {
    return absl::AbortedError("the calling process exited while its request was prepared");
  }
  return p;
}

}  // namespace berth::daemon
