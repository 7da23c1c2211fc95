// What every part of one build shares: who asked (the caller, their
// fakeroot ids and cgroup), where it stages, how to report, how to stop.
//
// A BuildContext lives on the RPC's thread for the whole build; the
// bootstrap agents, section runners and the assembler take it by reference.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "berth/v1/build.pb.h"
#include "common/unique_fd.h"
#include "daemon/build/host_process.h"
#include "daemon/build/progress.h"
#include "daemon/build/staging.h"
#include "daemon/daemon_options.h"
#include "daemon/gpu/gpu_service.h"
#include "daemon/launch/launch.h"
#include "daemon/policy/config.h"
#include "daemon/pull/blob_cache.h"

namespace berth::daemon::build {

struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  pid_t pid = 0;
  std::string name;  // login name; "" when the host has none
  std::string home;
  // The fakeroot maps (daemon/fakeroot): caller at 0, plus the subid range
  // when one is listed (empty: root-mapped).
  std::vector<launch::IdMapping> uid_map, gid_map;
  bool ranges = false;
  // The caller's cgroups (v2 first) and limits, as containers get them.
  std::vector<std::string> cgroup_dirs;
  std::string cgroup_v2;
};

// The caller's ids, groups, fakeroot maps and cgroup, for a host process.
inline void ApplyCaller(const Caller& c, HostProcessSpec& spec) {
  spec.uid = c.uid;
  spec.gid = c.gid;
  spec.groups = c.groups;
  spec.uid_map = c.uid_map;
  spec.gid_map = c.gid_map;
  spec.cgroup_dir = c.cgroup_v2;
}

struct BuildContext {
  const DaemonOptions* options = nullptr;
  const policy::Config* config = nullptr;
  const v1::BuildRequest* request = nullptr;
  Caller caller;
  BuildStaging* staging = nullptr;
  Progress* progress = nullptr;
  // The worker binary (opened at start-up) and /bin/sh, for host processes.
  int worker_fd = -1;
  gpu::GpuService* gpus = nullptr;  // --nv/--rocm; null where the daemon has none
  UniqueFd cwd;                     // the client's working directory, handed over
  // True once the client is gone: every wait polls it.
  std::function<bool()> cancelled;
  std::string definition_name;
  // The stage cache's use of the node cache (stage_cache.h); null: off.
  pull::BlobCache::Transfer* stage_cache = nullptr;

  absl::Status CheckCancelled() const {
    if (cancelled && cancelled()) return absl::CancelledError("the client went away");
    return absl::OkStatus();
  }
};

}  // namespace berth::daemon::build
