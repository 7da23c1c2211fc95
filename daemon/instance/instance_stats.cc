#include "daemon/instance/instance_stats.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "daemon/launch/cgroups.h"

namespace berth::daemon::instance {
namespace {

// A small cgroupfs file, or nothing when it is not there.
bool ReadFile(const std::string& path, std::string& out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out.clear();
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && out.size() < (1 << 20)) {
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return n >= 0;
}

// A number, or "max" (no limit: 0). v1's "no limit" is a page-rounded
// LONG_MAX, also 0 here.
bool ReadNumber(const std::string& path, uint64_t& out) {
  std::string text;
  if (!ReadFile(path, text)) return false;
  absl::string_view v = absl::StripAsciiWhitespace(text);
  if (v == "max") {
    out = 0;
    return true;
  }
  if (!absl::SimpleAtoi(v, &out)) return false;
  if (out >= (uint64_t{1} << 62)) out = 0;
  return true;
}

// "key value" lines (cpu.stat, cpuacct.stat).
uint64_t Field(const std::string& text, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> kv = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t v;
    if (kv.size() == 2 && kv[0] == key && absl::SimpleAtoi(kv[1], &v)) return v;
  }
  return 0;
}

void ReadV2(const std::string& dir, CgroupStats& s) {
  std::string text;
  if (ReadFile(dir + "/cpu.stat", text)) {
    s.cpu_usage_ns = Field(text, "usage_usec") * 1000;
    s.cpu_user_ns = Field(text, "user_usec") * 1000;
    s.cpu_system_ns = Field(text, "system_usec") * 1000;
  }
  if (ReadNumber(dir + "/memory.current", s.memory_usage)) {
    s.cgroup = dir;
    ReadNumber(dir + "/memory.max", s.memory_limit);
  }
  if (ReadNumber(dir + "/pids.current", s.pids_current))
    ReadNumber(dir + "/pids.max", s.pids_limit);
  if (ReadFile(dir + "/io.stat", text)) {
    // "MAJ:MIN rbytes=N wbytes=N rios=N ..." per device.
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      for (absl::string_view kv : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
        uint64_t v;
        if (absl::ConsumePrefix(&kv, "rbytes=") && absl::SimpleAtoi(kv, &v)) s.io_read_bytes += v;
        if (absl::ConsumePrefix(&kv, "wbytes=") && absl::SimpleAtoi(kv, &v)) s.io_write_bytes += v;
      }
    }
  }
}

void ReadV1(const std::string& dir, CgroupStats& s) {
  std::string text;
  uint64_t v;
  if (ReadNumber(dir + "/cpuacct.usage", v)) {
    s.cpu_usage_ns = v;
    if (ReadFile(dir + "/cpuacct.stat", text)) {
      // USER_HZ ticks.
      uint64_t hz = static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
      s.cpu_user_ns = Field(text, "user") * (1000000000 / hz);
      s.cpu_system_ns = Field(text, "system") * (1000000000 / hz);
    }
  }
  if (ReadNumber(dir + "/memory.usage_in_bytes", s.memory_usage)) {
    s.cgroup = dir;
    ReadNumber(dir + "/memory.limit_in_bytes", s.memory_limit);
  }
  if (ReadNumber(dir + "/pids.current", s.pids_current))
    ReadNumber(dir + "/pids.max", s.pids_limit);
  if (ReadFile(dir + "/blkio.throttle.io_service_bytes_recursive", text)) {
    // "MAJ:MIN Read N" / "MAJ:MIN Write N" / "Total N".
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (f.size() == 3 && absl::SimpleAtoi(f[2], &v)) {
        if (f[1] == "Read") s.io_read_bytes += v;
        if (f[1] == "Write") s.io_write_bytes += v;
      }
    }
  }
}

}  // namespace

absl::StatusOr<CgroupStats> ReadCgroupStats(pid_t pid) {
  ASSIGN_OR_RETURN(std::vector<std::string> dirs, launch::CgroupDirsOf(pid));
  return ReadCgroupStatsIn(dirs);
}

absl::StatusOr<CgroupStats> ReadCgroupStatsIn(const std::vector<std::string>& dirs) {
  CgroupStats s;
  for (const std::string& dir : dirs) {
    if (::access((dir + "/cgroup.controllers").c_str(), F_OK) == 0) {
      ReadV2(dir, s);
    } else {
      ReadV1(dir, s);
    }
  }
  if (s.cgroup.empty() && !dirs.empty()) s.cgroup = dirs.front();
  if (dirs.empty()) return absl::NotFoundError("the instance is in no cgroup mounted here");
  return s;
}

}  // namespace berth::daemon::instance
