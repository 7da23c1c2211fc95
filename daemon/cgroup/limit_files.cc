#include "daemon/cgroup/limit_files.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace berth::daemon::cgroup {
namespace {

std::string DeviceLine(const DeviceValue& d, absl::string_view prefix = "") {
  return absl::StrCat(d.major, ":", d.minor, " ", prefix, d.value);
}

// v2 "max" for none.
std::string MaxOr(int64_t v) {
  return v < 0 ? "max" : absl::StrCat(v);
}

void AddThrottleV1(std::vector<LimitWrite>& w, const std::vector<DeviceValue>& devices,
                   const char* file, const char* what) {
  for (const DeviceValue& d : devices) w.push_back({"blkio", file, DeviceLine(d), what});
}

}  // namespace

absl::StatusOr<std::vector<LimitWrite>> V1Writes(const Resources& r) {
  std::vector<LimitWrite> w;
  if (r.cpu_shares) w.push_back({"cpu", "cpu.shares", absl::StrCat(*r.cpu_shares), "--cpu-shares"});
  if (r.cpu_period) {
    w.push_back({"cpu", "cpu.cfs_period_us", absl::StrCat(*r.cpu_period), "--cpus (period)"});
  }
  if (r.cpu_quota) w.push_back({"cpu", "cpu.cfs_quota_us", absl::StrCat(*r.cpu_quota), "--cpus"});
  if (!r.cpuset_cpus.empty())
    w.push_back({"cpuset", "cpuset.cpus", r.cpuset_cpus, "--cpuset-cpus"});
  if (!r.cpuset_mems.empty())
    w.push_back({"cpuset", "cpuset.mems", r.cpuset_mems, "--cpuset-mems"});
  if (r.memory_limit) {
    w.push_back({"memory", "memory.limit_in_bytes", absl::StrCat(*r.memory_limit), "--memory"});
  }
  if (r.memory_swap) {
    w.push_back(
        {"memory", "memory.memsw.limit_in_bytes", absl::StrCat(*r.memory_swap), "--memory-swap"});
  }
  if (r.memory_reservation) {
    w.push_back({"memory", "memory.soft_limit_in_bytes", absl::StrCat(*r.memory_reservation),
                 "--memory-reservation"});
  }
  if (r.memory_swappiness) {
    w.push_back(
        {"memory", "memory.swappiness", absl::StrCat(*r.memory_swappiness), "memory swappiness"});
  }
  if (r.disable_oom_killer)
    w.push_back({"memory", "memory.oom_control", "1", "--oom-kill-disable"});
  if (r.pids_limit) {
    w.push_back({"pids", "pids.max", *r.pids_limit <= 0 ? "max" : absl::StrCat(*r.pids_limit),
                 "--pids-limit"});
  }
  if (r.blkio_weight) {
    w.push_back({"blkio", "blkio.weight", absl::StrCat(*r.blkio_weight), "--blkio-weight"});
  }
  for (const DeviceValue& d : r.blkio_weight_device) {
    w.push_back({"blkio", "blkio.weight_device", DeviceLine(d), "--blkio-weight-device"});
  }
  AddThrottleV1(w, r.throttle_read_bps, "blkio.throttle.read_bps_device", "throttleReadBpsDevice");
  AddThrottleV1(w, r.throttle_write_bps, "blkio.throttle.write_bps_device",
                "throttleWriteBpsDevice");
  AddThrottleV1(w, r.throttle_read_iops, "blkio.throttle.read_iops_device",
                "throttleReadIOPSDevice");
  AddThrottleV1(w, r.throttle_write_iops, "blkio.throttle.write_iops_device",
                "throttleWriteIOPSDevice");
  for (const HugepageLimit& h : r.hugepage_limits) {
    w.push_back({"hugetlb", absl::StrCat("hugetlb.", h.page_size, ".limit_in_bytes"),
                 absl::StrCat(h.limit), "hugepageLimits"});
  }
  if (!r.unified.empty()) {
    // Only the v2 hierarchy has these files; the caller routes them there.
    return absl::InvalidArgumentError("[unified] keys apply to cgroup v2 only");
  }
  return w;
}

absl::StatusOr<std::vector<LimitWrite>> V2Writes(const Resources& r) {
  std::vector<LimitWrite> w;
  if (r.cpu_shares) {
    // runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] onto [1, 10000].
    uint64_t weight = 1 + ((*r.cpu_shares - 2) * 9999) / 262142;
    w.push_back({"cpu", "cpu.weight", absl::StrCat(weight), "--cpu-shares"});
  }
  if (r.cpu_quota || r.cpu_period) {
    std::string quota = r.cpu_quota ? MaxOr(*r.cpu_quota) : "max";
    w.push_back(
        {"cpu", "cpu.max", absl::StrCat(quota, " ", r.cpu_period.value_or(100000)), "--cpus"});
  }
  if (!r.cpuset_cpus.empty())
    w.push_back({"cpuset", "cpuset.cpus", r.cpuset_cpus, "--cpuset-cpus"});
  if (!r.cpuset_mems.empty())
    w.push_back({"cpuset", "cpuset.mems", r.cpuset_mems, "--cpuset-mems"});
  if (r.memory_limit) w.push_back({"memory", "memory.max", MaxOr(*r.memory_limit), "--memory"});
  if (r.memory_swap) {
    // OCI counts memory plus swap; v2 counts swap alone.
    std::string swap = *r.memory_swap < 0 ? "max" : absl::StrCat(*r.memory_swap - *r.memory_limit);
    w.push_back({"memory", "memory.swap.max", swap, "--memory-swap"});
  }
  if (r.memory_reservation) {
    w.push_back({"memory", "memory.low", MaxOr(*r.memory_reservation), "--memory-reservation"});
  }
  if (r.disable_oom_killer) {
    return absl::InvalidArgumentError(
        "--oom-kill-disable: cgroup v2 cannot disable the OOM killer (use --memory-swap or a "
        "larger --memory)");
  }
  if (r.memory_swappiness) {
    return absl::InvalidArgumentError("memory swappiness: cgroup v2 has no per-cgroup swappiness");
  }
  if (r.pids_limit) {
    w.push_back({"pids", "pids.max", *r.pids_limit <= 0 ? "max" : absl::StrCat(*r.pids_limit),
                 "--pids-limit"});
  }
  // runc's ConvertBlkIOToIOWeightValue: [10, 1000] onto [1, 10000].
  auto io_weight = [](uint64_t w) { return 1 + (w - 10) * 9999 / 990; };
  if (r.blkio_weight) {
    w.push_back({"io", "io.weight", absl::StrCat("default ", io_weight(*r.blkio_weight)),
                 "--blkio-weight"});
  }
  for (const DeviceValue& d : r.blkio_weight_device) {
    w.push_back({"io", "io.weight", absl::StrCat(d.major, ":", d.minor, " ", io_weight(d.value)),
                 "--blkio-weight-device"});
  }
  auto throttle = [&w](const std::vector<DeviceValue>& devices, const char* key, const char* what) {
    for (const DeviceValue& d : devices) {
      w.push_back(
          {"io", "io.max", absl::StrCat(d.major, ":", d.minor, " ", key, "=", d.value), what});
    }
  };
  throttle(r.throttle_read_bps, "rbps", "throttleReadBpsDevice");
  throttle(r.throttle_write_bps, "wbps", "throttleWriteBpsDevice");
  throttle(r.throttle_read_iops, "riops", "throttleReadIOPSDevice");
  throttle(r.throttle_write_iops, "wiops", "throttleWriteIOPSDevice");
  for (const HugepageLimit& h : r.hugepage_limits) {
    w.push_back({"hugetlb", absl::StrCat("hugetlb.", h.page_size, ".max"), absl::StrCat(h.limit),
                 "hugepageLimits"});
  }
  for (const auto& [key, value] : r.unified) {
    w.push_back({key.substr(0, key.find('.')), key, value, absl::StrCat("[unified] ", key)});
  }
  return w;
}

std::vector<std::string> ControllersOf(const std::vector<LimitWrite>& writes) {
  std::vector<std::string> out;
  for (const LimitWrite& w : writes) {
    if (std::find(out.begin(), out.end(), w.controller) == out.end()) out.push_back(w.controller);
  }
  return out;
}

}  // namespace berth::daemon::cgroup
