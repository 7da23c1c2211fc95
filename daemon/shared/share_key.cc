#include "daemon/shared/share_key.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::daemon::shared {
namespace {

// Slurm's ids are 32-bit; a longer run of digits is not one of them.
constexpr size_t kMaxIdDigits = 10;
constexpr size_t kMaxEnviron = 1 << 20;
constexpr int kMaxAncestors = 64;

bool IsId(absl::string_view s) {
  if (s.empty() || s.size() > kMaxIdDigits) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Up to `max` bytes of a /proc file; a process that is gone is an error.
absl::StatusOr<std::string> ReadProc(const std::string& path, size_t max) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY));
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(path, errno);
    if (n == 0 || out.size() >= max) break;
    out.append(buf, static_cast<size_t>(n));
  }
  if (out.size() > max) out.resize(max);
  return out;
}

struct ProcStat {
  pid_t ppid = -1;
  std::string comm;
  std::string start_time;  // field 22: ticks since boot, tells pid reuse apart
};

// /proc/<pid>/stat: "pid (comm) state ppid ...". comm may hold spaces and
// parentheses, so the fields are counted from the last ')'.
absl::StatusOr<ProcStat> ReadStat(pid_t pid) {
  ASSIGN_OR_RETURN(std::string text, ReadProc(absl::StrCat("/proc/", pid, "/stat"), 4096));
  size_t open = text.find('('), close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) {
    return absl::InternalError(absl::StrCat("unexpected /proc/", pid, "/stat"));
  }
  ProcStat st;
  st.comm = text.substr(open + 1, close - open - 1);
  std::vector<absl::string_view> f =
      absl::StrSplit(absl::string_view(text).substr(close + 1), ' ', absl::SkipEmpty());
  // f[0] is the state (field 3); ppid is field 4, starttime field 22.
  if (f.size() < 20 || !absl::SimpleAtoi(f[1], &st.ppid)) {
    return absl::InternalError(absl::StrCat("unexpected /proc/", pid, "/stat"));
  }
  st.start_time = std::string(f[19]);
  return st;
}

// The real uid of a process, from /proc/<pid>/status.
std::optional<uid_t> RealUid(pid_t pid) {
  auto text = ReadProc(absl::StrCat("/proc/", pid, "/status"), 8192);
  if (!text.ok()) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (!absl::ConsumePrefix(&line, "Uid:")) continue;
    std::vector<absl::string_view> ids = absl::StrSplit(line, '\t', absl::SkipEmpty());
    uid_t uid;
    if (!ids.empty() && absl::SimpleAtoi(ids[0], &uid)) return uid;
  }
  return std::nullopt;
}

// The step's slurmstepd: the nearest ancestor of that name owned by root.
// A user can name a process anything, but not make it root's.
pid_t SlurmstepdOf(pid_t pid) {
  for (int i = 0; i < kMaxAncestors && pid > 1; ++i) {
    auto st = ReadStat(pid);
    if (!st.ok()) return -1;
    if (st->comm == "slurmstepd" && RealUid(pid) == uid_t{0}) return pid;
    pid = st->ppid;
  }
  return -1;
}

absl::StatusOr<std::optional<SlurmStep>> SlurmStepOf(pid_t pid, bool read_environ) {
  ASSIGN_OR_RETURN(std::string cgroup, ReadProc(absl::StrCat("/proc/", pid, "/cgroup"), 65536));
  if (auto step = SlurmStepFromCgroup(cgroup)) return step;
  if (!read_environ) return std::nullopt;
  ASSIGN_OR_RETURN(std::string environ,
                   ReadProc(absl::StrCat("/proc/", pid, "/environ"), kMaxEnviron));
  return SlurmStepFromEnviron(environ);
}

bool StillAlive(int pidfd) {
  return ::syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) == 0;
}

}  // namespace

std::optional<SlurmStep> SlurmStepFromCgroup(absl::string_view proc_cgroup) {
  for (absl::string_view line : absl::StrSplit(proc_cgroup, '\n', absl::SkipEmpty())) {
    // "ID:CONTROLLERS:PATH"
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3) continue;
    std::vector<absl::string_view> parts = absl::StrSplit(f[2], '/', absl::SkipEmpty());
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      absl::string_view job = parts[i], step = parts[i + 1];
      if (absl::ConsumePrefix(&job, "job_") && absl::ConsumePrefix(&step, "step_") && IsId(job) &&
          IsId(step)) {
        return SlurmStep{std::string(job), std::string(step)};
      }
    }
  }
  return std::nullopt;
}

std::optional<SlurmStep> SlurmStepFromEnviron(absl::string_view environ) {
  std::optional<absl::string_view> job, step;
  for (absl::string_view kv : absl::StrSplit(environ, '\0', absl::SkipEmpty())) {
    if (!job && absl::ConsumePrefix(&kv, "SLURM_JOB_ID=")) {
      job = kv;
    } else if (!step && absl::ConsumePrefix(&kv, "SLURM_STEP_ID=")) {
      step = kv;
    }
  }
  if (!job || !step || !IsId(*job) || !IsId(*step)) return std::nullopt;
  return SlurmStep{std::string(*job), std::string(*step)};
}

absl::StatusOr<std::optional<ShareKey>> ShareKeyOf(pid_t pid, int pidfd, uid_t uid,
                                                   ShareRequest request,
                                                   const ShareKeySources& sources) {
  if (request == ShareRequest::kNever) return std::nullopt;
  ShareKey key;
  key.uid = uid;
  if (request == ShareRequest::kParent) {
    ASSIGN_OR_RETURN(ProcStat self, ReadStat(pid));
    auto parent = ReadStat(self.ppid);
    if (!parent.ok()) return Annotate(parent.status(), "--sharens: reading the parent process");
    key.scope = absl::StrCat("parent ", self.ppid, " (started at ", parent->start_time, ")");
    key.anchor = self.ppid;
  } else {
    if (!sources.share_slurm_steps) return std::nullopt;
    auto step = SlurmStepOf(pid, sources.read_environ);
    if (!step.ok()) return Annotate(step.status(), "reading the caller's Slurm step");
    if (!step->has_value()) return std::nullopt;
    key.scope = absl::StrCat("slurm step ", (*step)->job, ".", (*step)->step);
    key.job = (*step)->job;
    key.anchor = SlurmstepdOf(pid);
  }
  // Everything was read by pid: it must still have been the caller.
  if (!StillAlive(pidfd)) {
    return absl::AbortedError("the calling process exited while its request was prepared");
  }
  return key;
}

}  // namespace berth::daemon::shared
