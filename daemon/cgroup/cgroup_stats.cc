#include "daemon/cgroup/cgroup_stats.h"

#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "daemon/cgroup/cgroup_files.h"

namespace berth::daemon::cgroup {
namespace {

// v1 reports "no limit" as a huge page-aligned number.
constexpr uint64_t kV1Unlimited = uint64_t{1} << 62;

std::optional<uint64_t> ReadNumber(const std::string& dir, const char* file) {
  auto text = ReadCgroupFile(absl::StrCat(dir, "/", file));
  uint64_t v = 0;
  if (!text.ok() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &v)) return std::nullopt;
  return v;
}

// A limit file: a number, or "max" (v2) / a huge value (v1) for none.
void ReadLimit(const std::string& dir, const char* file, std::optional<uint64_t>& out,
               bool& found) {
  auto text = ReadCgroupFile(absl::StrCat(dir, "/", file));
  if (!text.ok()) return;
  found = true;
  uint64_t v = 0;
  if (absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &v) && v < kV1Unlimited) out = v;
}

// "KEY VALUE" lines (cpu.stat, ...).
std::optional<uint64_t> Keyed(const std::string& dir, const char* file, absl::string_view key) {
  auto text = ReadCgroupFile(absl::StrCat(dir, "/", file));
  if (!text.ok()) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t v = 0;
    if (f.size() == 2 && f[0] == key && absl::SimpleAtoi(f[1], &v)) return v;
  }
  return std::nullopt;
}

// v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=..." per device.
void ReadIoStat(const std::string& dir, CgroupStats& s) {
  auto text = ReadCgroupFile(absl::StrCat(dir, "/io.stat"));
  if (!text.ok()) return;
  uint64_t read = 0, written = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    for (absl::string_view field : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      uint64_t v = 0;
      if (absl::ConsumePrefix(&field, "rbytes=") && absl::SimpleAtoi(field, &v)) read += v;
      if (absl::ConsumePrefix(&field, "wbytes=") && absl::SimpleAtoi(field, &v)) written += v;
    }
  }
  s.io_read_bytes = read;
  s.io_write_bytes = written;
}

// v1: "8:0 Read 4096" lines and a "Total" line.
void ReadBlkio(const std::string& dir, CgroupStats& s) {
  auto text = ReadCgroupFile(absl::StrCat(dir, "/blkio.throttle.io_service_bytes_recursive"));
  if (!text.ok()) return;
  uint64_t read = 0, written = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t v = 0;
    if (f.size() != 3 || !absl::SimpleAtoi(f[2], &v)) continue;
    if (f[1] == "Read") read += v;
    if (f[1] == "Write") written += v;
  }
  s.io_read_bytes = read;
  s.io_write_bytes = written;
}

}  // namespace

absl::StatusOr<CgroupStats> ReadCgroupStats(const std::vector<std::string>& dirs) {
  CgroupStats s;
  bool any = false;
  for (const std::string& dir : dirs) {
    if (::access(dir.c_str(), R_OK | X_OK) != 0) continue;
    any = true;
    bool v2 = ::access(absl::StrCat(dir, "/cgroup.controllers").c_str(), F_OK) == 0;
    if (!s.cpu_usage_ns) {
      if (v2) {
        if (auto us = Keyed(dir, "cpu.stat", "usage_usec")) s.cpu_usage_ns = *us * 1000;
      } else {
        s.cpu_usage_ns = ReadNumber(dir, "cpuacct.usage");
      }
    }
    if (!s.memory_usage_bytes) {
      s.memory_usage_bytes = ReadNumber(dir, v2 ? "memory.current" : "memory.usage_in_bytes");
      bool found = false;
      if (s.memory_usage_bytes) {
        ReadLimit(dir, v2 ? "memory.max" : "memory.limit_in_bytes", s.memory_limit_bytes, found);
      }
    }
    if (!s.pids_current) {
      s.pids_current = ReadNumber(dir, "pids.current");
      bool found = false;
      if (s.pids_current) ReadLimit(dir, "pids.max", s.pids_limit, found);
    }
    if (!s.io_read_bytes) v2 ? ReadIoStat(dir, s) : ReadBlkio(dir, s);
  }
  if (!any) return absl::NotFoundError("none of the container's cgroup directories is readable");
  return s;
}

}  // namespace berth::daemon::cgroup
