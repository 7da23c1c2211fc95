#include "daemon/service/run_limits.h"

#include <sys/syscall.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "daemon/launch/cgroups.h"

namespace berth::daemon {
namespace {

std::vector<cgroup::DeviceValue> Devices(
    const google::protobuf::RepeatedPtrField<v1::DeviceValue>& in) {
  std::vector<cgroup::DeviceValue> out;
  for (const v1::DeviceValue& d : in) out.push_back({d.major(), d.minor(), d.value()});
  return out;
}

}  // namespace

absl::StatusOr<cgroup::Resources> ResourcesOf(const v1::Resources& in) {
  cgroup::Resources r;
  if (in.has_cpu_shares()) r.cpu_shares = in.cpu_shares();
  if (in.has_cpu_quota()) r.cpu_quota = in.cpu_quota();
  if (in.has_cpu_period()) r.cpu_period = in.cpu_period();
  r.cpuset_cpus = in.cpuset_cpus();
  r.cpuset_mems = in.cpuset_mems();
  if (in.has_memory_limit()) r.memory_limit = in.memory_limit();
  if (in.has_memory_reservation()) r.memory_reservation = in.memory_reservation();
  if (in.has_memory_swap()) r.memory_swap = in.memory_swap();
  r.disable_oom_killer = in.disable_oom_killer();
  if (in.has_memory_swappiness()) r.memory_swappiness = in.memory_swappiness();
  if (in.has_pids_limit()) r.pids_limit = in.pids_limit();
  if (in.has_blkio_weight()) r.blkio_weight = in.blkio_weight();
  r.blkio_weight_device = Devices(in.blkio_weight_device());
  r.throttle_read_bps = Devices(in.throttle_read_bps());
  r.throttle_write_bps = Devices(in.throttle_write_bps());
  r.throttle_read_iops = Devices(in.throttle_read_iops());
  r.throttle_write_iops = Devices(in.throttle_write_iops());
  if (in.hugepage_limits_size() > 8) {
    return absl::InvalidArgumentError("hugepageLimits: more than 8 entries");
  }
  for (const v1::HugepageLimit& h : in.hugepage_limits()) {
    r.hugepage_limits.push_back({h.page_size(), h.limit()});
  }
  if (in.unified_size() > 64) return absl::InvalidArgumentError("[unified]: more than 64 keys");
  for (const auto& [key, value] : in.unified()) r.unified[key] = value;
  RETURN_IF_ERROR(cgroup::Validate(r));
  return r;
}

absl::StatusOr<std::optional<cgroup::ContainerCgroup>> MakeRunCgroup(
    const v1::RunRequest& request, pid_t caller_pid, int caller_pidfd,
    std::vector<std::string>& join) {
  if (!request.has_resources()) return std::nullopt;
  ASSIGN_OR_RETURN(cgroup::Resources r, ResourcesOf(request.resources()));
  if (r.empty()) return std::nullopt;
  auto caller = launch::CgroupHierarchiesOf(caller_pid);
  if (!caller.ok()) return Annotate(caller.status(), "reading the caller's cgroups");
  if (::syscall(SYS_pidfd_send_signal, caller_pidfd, 0, nullptr, 0) != 0) {
    return absl::UnavailableError("the calling process exited while its cgroups were read");
  }
  auto cg = cgroup::ContainerCgroup::Create(*caller, r);
  if (!cg.ok()) return Annotate(cg.status(), "applying the cgroup limits");
  cg->ReplaceIn(join);
  return std::optional<cgroup::ContainerCgroup>(std::move(*cg));
}

}  // namespace berth::daemon
