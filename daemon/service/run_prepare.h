// Turning a checked RunRequest into a LaunchSpec: the caller's account, the
// leased image, the environment and argv, and every bind source opened as
// the caller. Split from run_handler.cc so each step can be read alone.
//
// Privilege: runs with the daemon's privileges; every path from the request
// is opened through image::OpenAsCaller / OpenPathAsCaller.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "berth/v1/berth.pb.h"
#include "daemon/cgroup/container_cgroup.h"
#include "daemon/daemon_options.h"
#include "daemon/gpu/gpu_service.h"
#include "daemon/image/mount_cache.h"
#include "daemon/launch/launch.h"
#include "daemon/policy/config.h"
#include "daemon/server/peer_identity.h"
#include "daemon/service/ecl_gate.h"

namespace berth::daemon {

struct PreparedRun {
  std::shared_ptr<image::MountLease> lease;  // keeps the image mounted
  // The images that image-src binds come from, mounted as long as this lives.
  std::vector<std::shared_ptr<image::MountLease>> bind_leases;
  launch::LaunchSpec spec;
  UniqueFd pty_master;  // set when the request asked for a terminal
  // INFO lines for the caller, sent before the container starts (the
  // fakeroot mode when it is the root-mapped fallback).
  std::vector<std::string> notices;
  // The container's own cgroup when the request has limits; removed when
  // this is destroyed, after the container was reaped.
  std::optional<cgroup::ContainerCgroup> cgroup;
};

// `instance`: the name of the instance this run starts, if any
// (APPTAINER_INSTANCE inside).
// `early_notices` receives what must reach the caller even when the run is
// refused (`berth mpi check`'s explanation of a stack it refuses).
absl::StatusOr<PreparedRun> PrepareRun(const v1::RunRequest& request, const PeerIdentity& peer,
                                       std::vector<UniqueFd> handed_fds,
                                       const DaemonOptions& options, const policy::Config& config,
                                       image::MountCache& images, EclGate* ecl = nullptr,
                                       gpu::GpuService* gpus = nullptr,
                                       const std::string& instance = "",
                                       std::vector<std::string>* early_notices = nullptr);

// A running instance a process joins (instance://NAME).
struct JoinTarget {
  std::string name;
  std::string image;      // what it was started from (APPTAINER_CONTAINER)
  std::string root;       // its root as the daemon reaches it: /proc/<init>/root
  std::string home;       // $HOME inside
  std::string start_cwd;  // where its first process started
  bool has_shell = true;  // the image has /bin/sh (the env scripts are sourced)
  bool fakeroot = false;
};

// Whether the image mounted at `root` has /bin/sh, resolved inside it.
bool ImageHasShell(const std::string& root);

// The process part of a run (identity, command, environment, stdio, the
// caller's cgroups and limits) for joining `target`: no image is opened and
// no bind is made; the container is what the instance's start built.
absl::StatusOr<PreparedRun> PrepareJoin(const v1::RunRequest& request, const PeerIdentity& peer,
                                        std::vector<UniqueFd> handed_fds,
                                        const DaemonOptions& options, const JoinTarget& target);

}  // namespace berth::daemon
