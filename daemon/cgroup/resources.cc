#include "daemon/cgroup/resources.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace berth::daemon::cgroup {
namespace {

constexpr int64_t kMinMemory = 4 << 20;  // below this the container cannot even start
constexpr uint32_t kMaxCpuListValue = 65535;

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(what);
}

absl::Status CheckDevices(const std::vector<DeviceValue>& devices, absl::string_view what,
                          uint64_t lo, uint64_t hi) {
  if (devices.size() > 64) return Bad(absl::StrCat(what, ": more than 64 devices"));
  for (const DeviceValue& d : devices) {
    // Linux majors have 12 bits, minors 20.
    if (d.major >= (1u << 12) || d.minor >= (1u << 20)) {
      return Bad(absl::StrCat(what, ": ", d.major, ":", d.minor, " is not a device number"));
    }
    if (d.value < lo || d.value > hi) {
      return Bad(absl::StrCat(what, " for ", d.major, ":", d.minor, ": ", d.value, " is outside ",
                              lo, "..", hi));
    }
  }
  return absl::OkStatus();
}

// A v2 interface file another controller's berth code does not own: the
// controller name, then a dot, then letters, digits, '_' and '.'.
bool IsUnifiedKey(absl::string_view key) {
  if (key.empty() || key.size() > 64 || key.front() == '.') return false;
  size_t dot = key.find('.');
  if (dot == absl::string_view::npos || dot == 0 || dot + 1 == key.size()) return false;
  for (char c : key) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') return false;
  }
  // cgroup.* moves processes, changes the tree or kills: not a limit.
  return !absl::StartsWith(key, "cgroup.");
}

}  // namespace

bool Resources::empty() const {
  return !cpu_shares && !cpu_quota && !cpu_period && cpuset_cpus.empty() && cpuset_mems.empty() &&
         !memory_limit && !memory_reservation && !memory_swap && !disable_oom_killer &&
         !memory_swappiness && !pids_limit && !blkio_weight && blkio_weight_device.empty() &&
         throttle_read_bps.empty() && throttle_write_bps.empty() && throttle_read_iops.empty() &&
         throttle_write_iops.empty() && hugepage_limits.empty() && unified.empty();
}

bool IsCpuList(const std::string& s) {
  if (s.empty() || s.size() > 4096) return false;
  for (absl::string_view item : absl::StrSplit(s, ',')) {
    std::vector<absl::string_view> ends = absl::StrSplit(item, absl::MaxSplits('-', 1));
    uint32_t lo = 0, hi = 0;
    for (absl::string_view e : ends) {
      if (e.empty() ||
          !std::all_of(e.begin(), e.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return false;
    }
    if (!absl::SimpleAtoi(ends[0], &lo) || lo > kMaxCpuListValue) return false;
    hi = lo;
    if (ends.size() == 2 && (!absl::SimpleAtoi(ends[1], &hi) || hi > kMaxCpuListValue || hi < lo))
      return false;
  }
  return true;
}

absl::Status Validate(const Resources& r) {
  if (r.cpu_shares && (*r.cpu_shares < 2 || *r.cpu_shares > 262144)) {
    return Bad(absl::StrCat("--cpu-shares ", *r.cpu_shares, " is outside 2..262144"));
  }
  if (r.cpu_period && (*r.cpu_period < 1000 || *r.cpu_period > 1000000)) {
    return Bad(absl::StrCat("cpu period ", *r.cpu_period, " µs is outside 1000..1000000"));
  }
  if (r.cpu_quota && *r.cpu_quota != -1 && (*r.cpu_quota < 1000 || *r.cpu_quota > (1LL << 40))) {
    return Bad(absl::StrCat("cpu quota ", *r.cpu_quota,
                            " µs is outside 1000..2^40 (--cpus must be at least 0.01)"));
  }
  if (!r.cpuset_cpus.empty() && !IsCpuList(r.cpuset_cpus)) {
    return Bad("--cpuset-cpus: not a cpu list like 0-3,6 (ascending ranges of numbers)");
  }
  if (!r.cpuset_mems.empty() && !IsCpuList(r.cpuset_mems)) {
    return Bad("--cpuset-mems: not a node list like 0-1,3 (ascending ranges of numbers)");
  }
  auto bytes = [](const std::optional<int64_t>& v, absl::string_view what, int64_t min) {
    if (!v || *v == -1) return absl::OkStatus();
    if (*v < min || *v > (1LL << 56)) {
      return Bad(absl::StrCat(what, " ", *v, " bytes is outside ", min, "..2^56 (-1: none)"));
    }
    return absl::OkStatus();
  };
  if (auto s = bytes(r.memory_limit, "--memory", kMinMemory); !s.ok()) return s;
  if (auto s = bytes(r.memory_reservation, "--memory-reservation", 0); !s.ok()) return s;
  if (auto s = bytes(r.memory_swap, "--memory-swap", kMinMemory); !s.ok()) return s;
  if (r.memory_swap && *r.memory_swap != -1) {
    if (!r.memory_limit || *r.memory_limit == -1) {
      return Bad("--memory-swap needs --memory (it is memory plus swap)");
    }
    if (*r.memory_swap < *r.memory_limit) {
      return Bad("--memory-swap is memory plus swap: it must be at least --memory");
    }
  }
  if (r.memory_swappiness && *r.memory_swappiness > 100) {
    return Bad("memory swappiness is outside 0..100");
  }
  if (r.pids_limit && *r.pids_limit > (1LL << 22)) {
    return Bad(absl::StrCat("--pids-limit ", *r.pids_limit, " is above 4194304"));
  }
  if (r.blkio_weight && (*r.blkio_weight < 10 || *r.blkio_weight > 1000)) {
    return Bad(absl::StrCat("--blkio-weight ", *r.blkio_weight, " is outside 10..1000"));
  }
  const uint64_t kMax = uint64_t{1} << 62;
  if (auto s = CheckDevices(r.blkio_weight_device, "--blkio-weight-device", 10, 1000); !s.ok())
    return s;
  if (auto s = CheckDevices(r.throttle_read_bps, "throttleReadBpsDevice", 1, kMax); !s.ok())
    return s;
  if (auto s = CheckDevices(r.throttle_write_bps, "throttleWriteBpsDevice", 1, kMax); !s.ok())
    return s;
  if (auto s = CheckDevices(r.throttle_read_iops, "throttleReadIOPSDevice", 1, kMax); !s.ok())
    return s;
  if (auto s = CheckDevices(r.throttle_write_iops, "throttleWriteIOPSDevice", 1, kMax); !s.ok())
    return s;
  if (r.hugepage_limits.size() > 8) return Bad("hugepageLimits: more than 8 entries");
  for (const HugepageLimit& h : r.hugepage_limits) {
    absl::string_view size = h.page_size;
    bool ok =
        size.size() >= 3 && size.size() <= 8 &&
        (absl::EndsWith(size, "KB") || absl::EndsWith(size, "MB") || absl::EndsWith(size, "GB")) &&
        std::all_of(size.begin(), size.end() - 2, [](char c) { return c >= '0' && c <= '9'; });
    if (!ok)
      return Bad(absl::StrCat("hugepageLimits: page size '", absl::CHexEscape(h.page_size),
                              "' is not like 2MB or 1GB"));
  }
  if (r.unified.size() > 64) return Bad("[unified]: more than 64 keys");
  for (const auto& [key, value] : r.unified) {
    if (!IsUnifiedKey(key)) {
      return Bad(absl::StrCat("[unified] key '", absl::CHexEscape(key.substr(0, 80)),
                              "' is not a cgroup v2 controller file like \"pids.max\""));
    }
    // One write of one line: a newline would let a value smuggle a second.
    if (value.empty() || value.size() > 4096 || value.find_first_of('\0') != std::string::npos ||
        value.find_first_of("\n\r") != std::string::npos) {
      return Bad(
          absl::StrCat("[unified] ", key, ": the value must be one non-empty line without NUL"));
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::daemon::cgroup
