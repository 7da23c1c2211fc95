// The resource limits a container's own cgroup gets: OCI LinuxResources as
// Apptainer's limit flags and --apply-cgroups TOML fill them, in OCI units,
// and the checks every value passes before anything reaches a cgroup file.
//
// Values come from the caller (hostile): Validate() bounds every number,
// parses cpu lists, refuses NUL/newlines and names only files of the
// controllers berth knows ([unified] included). Privilege: none (pure data).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace berth::daemon::cgroup {

struct DeviceValue {
  uint32_t major = 0, minor = 0;
  uint64_t value = 0;
};

struct HugepageLimit {
  std::string page_size;  // "2MB", "1GB"
  uint64_t limit = 0;     // bytes
};

struct Resources {
  std::optional<uint64_t> cpu_shares;  // 2..262144 (v2: converted to cpu.weight)
  std::optional<int64_t> cpu_quota;    // µs per period, >= 1000; -1 = none
  std::optional<uint64_t> cpu_period;  // µs, 1000..1000000 (default 100000)
  std::string cpuset_cpus, cpuset_mems;
  std::optional<int64_t> memory_limit;           // bytes, >= 4 MiB; -1 = none
  std::optional<int64_t> memory_reservation;     // bytes; -1 = none
  std::optional<int64_t> memory_swap;            // memory + swap, bytes; -1 = none
  bool disable_oom_killer = false;               // v1 only
  std::optional<uint64_t> memory_swappiness;     // 0..100, v1 only
  std::optional<int64_t> pids_limit;             // <= 0 = none
  std::optional<uint32_t> blkio_weight;          // 10..1000
  std::vector<DeviceValue> blkio_weight_device;  // weights 10..1000
  std::vector<DeviceValue> throttle_read_bps, throttle_write_bps;
  std::vector<DeviceValue> throttle_read_iops, throttle_write_iops;
  std::vector<HugepageLimit> hugepage_limits;
  std::map<std::string, std::string> unified;  // cgroup v2 file name -> value

  // No limit at all: the container joins its caller's cgroups as before.
  bool empty() const;
};

// Checks every value (ranges, cpu lists, [unified] names and values); the
// error names the flag or TOML key and the allowed range.
absl::Status Validate(const Resources& r);

// "0-3,8,10-11" (cpuset lists): digits, commas and ranges only, ascending
// ranges, at most 64 KiB of cpus.
bool IsCpuList(const std::string& s);

}  // namespace berth::daemon::cgroup
