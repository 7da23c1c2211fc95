// The Run RPC: one container from request to exit status.
//
// Steps, in order, each named in the error it may return:
//   1. check the request's shape (run_request_check.h) and take the
//      descriptors the connection passed;
//   2. open the image *as the caller*, apply the site's image policy, and
//      lease a shared read-only mount of it (image/mount_cache.h);
//   3. compute the environment and argv by Apptainer's rules (action/);
//   4. open $HOME, the cwd and every --bind source as the caller;
//   5. copy the caller's cgroups, affinity, limits and umask;
//   6. launch (launch/launch.h), or join the caller's shared container
//      (shared_run.h: the ranks of a Slurm step, --sharens) or the named
//      instance of instance://NAME (instance_run.h), and report Started;
//   7. relay signals (and a pty when the caller is on a terminal) until the
//      payload exits; report Exited. If the client dies first (SIGKILL from
//      scancel included), the container is killed: nothing outlives it.
//
// An instance start (RunRequest.instance) stops after step 6: the
// instance's init and script run on under the instance registry, and the
// session reports Exited(0) at once.
//
// Privilege: runs on its session's thread with the daemon's privileges. It takes
// the caller's filesystem identity only inside the OpenAsCaller calls of
// steps 2 and 4; the container drops to the caller inside launch/.
#pragma once

#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "berth/v1/berth.pb.h"
#include "daemon/daemon_options.h"
#include "daemon/gpu/gpu_service.h"
#include "daemon/image/mount_cache.h"
#include "daemon/instance/instance_registry.h"
#include "daemon/policy/config.h"
#include "daemon/server/peer_identity.h"
#include "daemon/server/run_sessions.h"
#include "daemon/service/ecl_gate.h"
#include "daemon/service/lease_keeper.h"
#include "daemon/service/run_prepare.h"
#include "daemon/shared/container_registry.h"

namespace berth::daemon {

class RunHandler {
 public:
  // `shared` (may be null: nothing is shared) must outlive the handler.
  RunHandler(const DaemonOptions& options, const policy::Config& config, image::MountCache& images,
             EclGate* ecl = nullptr, gpu::GpuService* gpus = nullptr,
             shared::ContainerRegistry* shared = nullptr,
             instance::InstanceRegistry* instances = nullptr);
  ~RunHandler();

  // Serves one run session for `peer`; returns the status to end it with.
  absl::Status Serve(RunChannel& channel, std::shared_ptr<const PeerIdentity> peer);

  // Gives the instances a previous daemon left running their --restart
  // policy back (from their records).
  void ResumeInstanceRestarts();

 private:
  // instance start|run: the session ends once the instance runs.
  absl::Status ServeInstanceStart(RunChannel& channel, v1::RunRequest request,
                                  const PeerIdentity& peer, std::vector<UniqueFd> handed);
  // --restart: how the instance `request` started is made again, as its
  // owner, with copies of the descriptors `fds` (its stdio).
  instance::Relaunch RelaunchOf(const v1::RunRequest& request, const PeerIdentity& peer,
                                std::vector<UniqueFd> fds);
  // The cgroup a new instance of `peer` gets (null: none can be made here,
  // and it has no limits), with `limits` tightened to the caller's own;
  // `limited` says whether it ended up with any.
  absl::StatusOr<std::shared_ptr<cgroup::ContainerCgroup>> InstanceCgroupFor(
      const PeerIdentity& peer, const std::string& name, cgroup::Resources limits,
      std::vector<std::string>& notices, bool& limited);
  // The caller's own instance named by instance://NAME.
  absl::StatusOr<std::shared_ptr<instance::Instance>> FindInstance(const v1::RunRequest& request,
                                                                   const PeerIdentity& peer);
  // Counts a uid's live containers against max_containers_per_user.
  absl::Status Admit(uid_t uid);
  void Release(uid_t uid);
  // A new container for the run, or a process in its shared one (`member`
  // then holds the membership until the process is done).
  absl::StatusOr<launch::Container> StartContainer(
      const v1::RunRequest& request, const PeerIdentity& peer, PreparedRun& run,
      std::unique_ptr<shared::ContainerRegistry::Membership>& member);

  DaemonOptions options_;
  const policy::Config& config_;
  image::MountCache& images_;
  EclGate* ecl_;           // the ECL check before every mount; null in tests without one
  gpu::GpuService* gpus_;  // --nv, --rocm, --device; null: refused when asked for
  shared::ContainerRegistry* shared_;
  instance::InstanceRegistry* instances_;  // null: no instances
  std::unique_ptr<LeaseKeeper> warm_;
  absl::Mutex mu_;
  absl::flat_hash_map<uid_t, int> live_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::daemon
