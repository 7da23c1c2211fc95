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
#include "daemon/launch/cgroups.h"

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

}  // namespace

absl::StatusOr<CallerProcess> ReadCallerProcess(pid_t pid, int pidfd) {
  CallerProcess p;
  std::string proc = absl::StrCat("/proc/", pid);
  ASSIGN_OR_RETURN(p.cgroup_dirs, launch::CgroupDirsToJoin(pid));
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
