#include "daemon/cgroup/ceiling.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "daemon/cgroup/cgroup_files.h"

namespace berth::daemon::cgroup {
namespace {

// v1 reports "no limit" as a huge page-aligned number.
constexpr uint64_t kUnlimited = uint64_t{1} << 62;

std::optional<int64_t> Number(const std::string& path) {
  auto text = ReadCgroupFile(path);
  if (!text.ok()) return std::nullopt;
  absl::string_view v = absl::StripAsciiWhitespace(*text);
  int64_t n = 0;
  if (v == "max" || !absl::SimpleAtoi(v, &n) || n < 0 || static_cast<uint64_t>(n) >= kUnlimited) {
    return std::nullopt;
  }
  return n;
}

// v2 cpu.max: "max 100000" or "50000 100000".
std::optional<double> V2Cpus(const std::string& dir) {
  auto text = ReadCgroupFile(absl::StrCat(dir, "/cpu.max"));
  if (!text.ok()) return std::nullopt;
  std::vector<absl::string_view> f =
      absl::StrSplit(absl::StripAsciiWhitespace(*text), ' ', absl::SkipEmpty());
  int64_t quota = 0, period = 0;
  if (f.size() != 2 || !absl::SimpleAtoi(f[0], &quota) || !absl::SimpleAtoi(f[1], &period) ||
      quota <= 0 || period <= 0) {
    return std::nullopt;
  }
  return static_cast<double>(quota) / static_cast<double>(period);
}

std::optional<double> V1Cpus(const std::string& dir) {
  auto quota = Number(absl::StrCat(dir, "/cpu.cfs_quota_us"));  // -1: none
  auto period = Number(absl::StrCat(dir, "/cpu.cfs_period_us"));
  if (!quota || !period || *quota <= 0 || *period <= 0) return std::nullopt;
  return static_cast<double>(*quota) / static_cast<double>(*period);
}

template <typename T>
void Lower(std::optional<T>& into, std::optional<T> v) {
  if (v && (!into || *v < *into)) into = v;
}

bool Has(const std::vector<std::string>& list, const char* item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::string Bytes(int64_t n) {
  if (n % (1 << 20) == 0) return absl::StrCat(n >> 20, "M");
  return absl::StrCat(n, " bytes");
}

}  // namespace

Ceiling ReadCeiling(const std::vector<launch::CgroupHierarchy>& hierarchies) {
  Ceiling c;
  for (const launch::CgroupHierarchy& h : hierarchies) {
    bool memory = h.v2 || Has(h.controllers, "memory");
    bool pids = h.v2 || Has(h.controllers, "pids");
    bool cpu = h.v2 || Has(h.controllers, "cpu");
    if (!memory && !pids && !cpu) continue;
    // Up to the hierarchy's root: the mount point's parent is no cgroup.
    for (std::string dir = h.dir; ::access(absl::StrCat(dir, "/cgroup.procs").c_str(), F_OK) == 0;
         dir = dir.substr(0, dir.rfind('/'))) {
      if (memory) {
        Lower(c.memory_bytes,
              Number(absl::StrCat(dir, h.v2 ? "/memory.max" : "/memory.limit_in_bytes")));
      }
      if (pids) Lower(c.pids, Number(absl::StrCat(dir, "/pids.max")));
      if (cpu) Lower(c.cpus, h.v2 ? V2Cpus(dir) : V1Cpus(dir));
      if (dir.rfind('/') == 0 || dir.rfind('/') == std::string::npos) break;
    }
  }
  return c;
}

absl::StatusOr<std::vector<std::string>> TightenTo(const Ceiling& c, Resources& r) {
  std::vector<std::string> notices;
  for (const auto& [file, value] : r.unified) {
    bool covered = (c.memory_bytes && (file == "memory.max" || file == "memory.high")) ||
                   (c.pids && file == "pids.max") || (c.cpus && file == "cpu.max");
    if (covered) {
      return absl::InvalidArgumentError(absl::StrCat(
          "[unified] ", file,
          ": your cgroup already limits this, and an instance's limit may only tighten it; "
          "set it with the [memory], [pids] or [cpu] keys (or the flags) instead"));
    }
  }
  if (c.memory_bytes) {
    bool asked = r.memory_limit && *r.memory_limit > 0;
    if (!asked || *r.memory_limit > *c.memory_bytes) {
      notices.push_back(
          asked ? absl::StrCat("--memory lowered to ", Bytes(*c.memory_bytes),
                               ", the limit of your own cgroup (an instance's may only tighten it)")
                : absl::StrCat("the instance keeps your cgroup's memory limit of ",
                               Bytes(*c.memory_bytes)));
      r.memory_limit = *c.memory_bytes;
    }
    if (r.memory_reservation && *r.memory_reservation > *c.memory_bytes) {
      r.memory_reservation = *c.memory_bytes;
    }
  }
  if (c.pids) {
    bool asked = r.pids_limit && *r.pids_limit > 0;
    if (!asked || *r.pids_limit > *c.pids) {
      notices.push_back(
          asked
              ? absl::StrCat("--pids-limit lowered to ", *c.pids, ", the limit of your own cgroup")
              : absl::StrCat("the instance keeps your cgroup's pids limit of ", *c.pids));
      r.pids_limit = *c.pids;
    }
  }
  if (c.cpus) {
    int64_t period = static_cast<int64_t>(r.cpu_period.value_or(100000));
    bool asked = r.cpu_quota && *r.cpu_quota > 0;
    double want = asked ? static_cast<double>(*r.cpu_quota) / static_cast<double>(period) : 0;
    if (!asked || want > *c.cpus) {
      int64_t quota = std::max<int64_t>(1000, std::llround(*c.cpus * static_cast<double>(period)));
      notices.push_back(asked ? absl::StrFormat("--cpus lowered to %.2f, the limit of your own "
                                                "cgroup",
                                                *c.cpus)
                              : absl::StrFormat("the instance keeps your cgroup's cpu limit of "
                                                "%.2f cpus",
                                                *c.cpus));
      r.cpu_quota = quota;
      r.cpu_period = static_cast<uint64_t>(period);
    }
  }
  return notices;
}

}  // namespace berth::daemon::cgroup
