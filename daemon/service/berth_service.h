// berth.v1.Berth as berthd serves it.
//
// Every handler starts the same way: it learns its caller from the connection
// the call arrived on (PeerRegistry), never from the request, and works in
// absl::Status; the gRPC boundary maps the result with its message intact.
// Version answers who the daemon is; pull/push/cache go to pull_service.h,
// doctor to daemon/doctor/; EndJob (the Slurm epilog, root only) to the
// shared-container registry; InstanceList/InstanceStop to the instance
// registry.
// Containers are not a gRPC method: run sessions (run_handler.h) arrive on
// connections of their own (server/run_sessions.h).
//
// Privilege: handlers run on gRPC's threads with the daemon's full
// privileges. Version does nothing on the caller's behalf; each later handler
// states here at which step it takes on the caller's identity.
#pragma once

#include <grpcpp/server_context.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "berth/v1/berth.grpc.pb.h"
#include "daemon/build/build_service.h"
#include "daemon/daemon_options.h"
#include "daemon/doctor/doctor.h"
#include "daemon/gpu/gpu_service.h"
#include "daemon/instance/instance_registry.h"
#include "daemon/pull/pull_service.h"
#include "daemon/server/peer_registry.h"
#include "daemon/shared/container_registry.h"

namespace berth::daemon {

class BerthService final : public berth::v1::Berth::Service {
 public:
  // `peers` must outlive the service.
  BerthService(const DaemonOptions& options, const PeerRegistry& peers,
               pull::PullService* pulls = nullptr, doctor::Doctor* doctor = nullptr,
               gpu::GpuService* gpus = nullptr, build::BuildService* builds = nullptr,
               shared::ContainerRegistry* shared = nullptr,
               instance::InstanceRegistry* instances = nullptr);

  grpc::Status Version(grpc::ServerContext* context, const v1::VersionRequest* request,
                       v1::VersionReply* reply) override;
  // pull/push/cache (daemon/pull/pull_service.h).
  grpc::Status Pull(grpc::ServerContext* context, const v1::PullRequest* request,
                    pull::PullWriter* writer) override;
  grpc::Status Push(grpc::ServerContext* context, const v1::PushRequest* request,
                    pull::PullWriter* writer) override;
  grpc::Status CacheList(grpc::ServerContext* context, const v1::CacheListRequest* request,
                         v1::CacheListReply* reply) override;
  grpc::Status CacheClean(grpc::ServerContext* context, const v1::CacheCleanRequest* request,
                          v1::CacheCleanReply* reply) override;
  grpc::Status CheckLogin(grpc::ServerContext* context, const v1::CheckLoginRequest* request,
                          v1::CheckLoginReply* reply) override;
  // build (daemon/build/build_service.h): every build step as the caller's
  // fakeroot user.
  grpc::Status Build(grpc::ServerContext* context, const v1::BuildRequest* request,
                     build::BuildWriter* writer) override;
  grpc::Status EndJob(grpc::ServerContext* context, const v1::EndJobRequest* request,
                      v1::EndJobReply* reply) override;
  // instance list|stop (daemon/instance/): the caller's own instances;
  // root names a user (or all) to see and stop anyone's.
  grpc::Status InstanceList(grpc::ServerContext* context, const v1::InstanceListRequest* request,
                            v1::InstanceListReply* reply) override;
  grpc::Status InstanceStop(grpc::ServerContext* context, const v1::InstanceStopRequest* request,
                            v1::InstanceStopReply* reply) override;
  grpc::Status InstanceStats(grpc::ServerContext* context, const v1::InstanceStatsRequest* request,
                             v1::InstanceStatsReply* reply) override;
  // doctor (daemon/doctor/doctor.h): any caller; the report is about the node
  // and the caller's own fakeroot ids.
  grpc::Status Doctor(grpc::ServerContext* context, const v1::DoctorRequest* request,
                      v1::DoctorReply* reply) override;
  // cdi list (daemon/gpu/gpu_service.h); the caller's --cdi-dirs are opened
  // as the caller.
  grpc::Status CdiList(grpc::ServerContext* context, const v1::CdiListRequest* request,
                       v1::CdiListReply* reply) override;

 private:
  absl::StatusOr<std::shared_ptr<const PeerIdentity>> Authenticate(
      const grpc::ServerContext& context) const;
  template <typename Fn>
  grpc::Status Delegate(grpc::ServerContext* context, const char* verb, Fn&& fn);
  absl::Status DoVersion(const grpc::ServerContext& context, v1::VersionReply& reply) const;

  DaemonOptions options_;
  const PeerRegistry& peers_;
  pull::PullService* pulls_;
  shared::ContainerRegistry* shared_;
  doctor::Doctor* doctor_;
  gpu::GpuService* gpus_;
  build::BuildService* builds_;
  instance::InstanceRegistry* instances_;
};

}  // namespace berth::daemon
