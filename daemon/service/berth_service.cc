#include "daemon/service/berth_service.h"

#include <unistd.h>

#include <optional>
#include <string>

#include "common/status_macros.h"
#include "proto/status_mapping.h"
#include "spdlog/spdlog.h"

namespace berth::daemon {
namespace {

v1::DaemonMode WireMode(DaemonMode mode) {
  return mode == DaemonMode::kSystem ? v1::DAEMON_MODE_SYSTEM : v1::DAEMON_MODE_USER;
}

void FillCaller(const PeerIdentity& peer, v1::Caller& caller) {
  caller.set_uid(peer.uid);
  caller.set_gid(peer.gid);
  caller.set_pid(peer.pid);
  for (gid_t group : peer.groups) caller.add_groups(group);
}

}  // namespace

BerthService::BerthService(const DaemonOptions& options, const PeerRegistry& peers,
                           pull::PullService* pulls, doctor::Doctor* doctor, gpu::GpuService* gpus,
                           build::BuildService* builds, shared::ContainerRegistry* shared,
                           instance::InstanceRegistry* instances)
    : options_(options),
      peers_(peers),
      pulls_(pulls),
      shared_(shared),
      doctor_(doctor),
      gpus_(gpus),
      builds_(builds),
      instances_(instances) {}

// The registry verbs share one shape: authenticate, delegate, log failures
// (the message never contains credentials: they only travel in requests).
template <typename Fn>
grpc::Status BerthService::Delegate(grpc::ServerContext* context, const char* verb, Fn&& fn) {
  auto caller = Authenticate(*context);
  if (!caller.ok()) return rpc::ToGrpcStatus(caller.status());
  if (pulls_ == nullptr)
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no registry support");
  absl::Status status = fn(**caller);
  if (!status.ok()) spdlog::info("{} failed: {}", verb, std::string(status.message()));
  return rpc::ToGrpcStatus(status);
}

grpc::Status BerthService::Pull(grpc::ServerContext* context, const v1::PullRequest* request,
                                pull::PullWriter* writer) {
  return Delegate(context, "Pull", [&](const PeerIdentity& peer) {
    return pulls_->Pull(*context, *request, *writer, peer);
  });
}

grpc::Status BerthService::Build(grpc::ServerContext* context, const v1::BuildRequest* request,
                                 build::BuildWriter* writer) {
  auto caller = Authenticate(*context);
  if (!caller.ok()) return rpc::ToGrpcStatus(caller.status());
  if (builds_ == nullptr) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no build support");
  absl::Status status = builds_->Build(*context, *request, *writer, **caller);
  if (!status.ok()) spdlog::info("Build failed: {}", std::string(status.message()));
  return rpc::ToGrpcStatus(status);
}

grpc::Status BerthService::Push(grpc::ServerContext* context, const v1::PushRequest* request,
                                pull::PullWriter* writer) {
  return Delegate(context, "Push", [&](const PeerIdentity& peer) {
    return pulls_->Push(*context, *request, *writer, peer);
  });
}

grpc::Status BerthService::CacheList(grpc::ServerContext* context,
                                     const v1::CacheListRequest* /*request*/,
                                     v1::CacheListReply* reply) {
  return Delegate(context, "CacheList",
                  [&](const PeerIdentity& peer) { return pulls_->CacheList(peer, *reply); });
}

grpc::Status BerthService::CacheClean(grpc::ServerContext* context,
                                      const v1::CacheCleanRequest* request,
                                      v1::CacheCleanReply* reply) {
  return Delegate(context, "CacheClean", [&](const PeerIdentity& peer) {
    return pulls_->CacheClean(*request, peer, *reply);
  });
}

grpc::Status BerthService::CheckLogin(grpc::ServerContext* context,
                                      const v1::CheckLoginRequest* request,
                                      v1::CheckLoginReply* /*reply*/) {
  return Delegate(context, "CheckLogin",
                  [&](const PeerIdentity& peer) { return pulls_->CheckLogin(*request, peer); });
}

grpc::Status BerthService::Doctor(grpc::ServerContext* context,
                                  const v1::DoctorRequest* /*request*/, v1::DoctorReply* reply) {
  auto caller = Authenticate(*context);
  if (!caller.ok()) return rpc::ToGrpcStatus(caller.status());
  if (doctor_ == nullptr) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no doctor");
  *reply = doctor_->Report((*caller)->uid, (*caller)->gid);
  return grpc::Status::OK;
}

grpc::Status BerthService::CdiList(grpc::ServerContext* context, const v1::CdiListRequest* request,
                                   v1::CdiListReply* reply) {
  auto caller = Authenticate(*context);
  if (!caller.ok()) return rpc::ToGrpcStatus(caller.status());
  if (gpus_ == nullptr) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no CDI support");
  if (request->cdi_dirs_size() > 64) {
    return rpc::ToGrpcStatus(absl::InvalidArgumentError("--cdi-dirs: more than 64 directories"));
  }
  std::vector<std::string> dirs(request->cdi_dirs().begin(), request->cdi_dirs().end());
  auto catalog = gpus_->ListCdi(dirs, {(*caller)->uid, (*caller)->gid, (*caller)->groups});
  if (!catalog.ok()) return rpc::ToGrpcStatus(catalog.status());
  for (const std::string& d : catalog->dirs) reply->add_dirs(d);
  for (const auto& [name, ref] : catalog->devices) {
    auto* e = reply->add_devices();
    e->set_name(name);
    e->set_spec(ref.origin);
  }
  for (const auto& [what, error] : catalog->broken) {
    auto* b = reply->add_broken();
    b->set_what(what);
    b->set_error(error);
  }
  for (const auto& [name, why] : catalog->conflicts) {
    auto* c = reply->add_conflicts();
    c->set_what(name);
    c->set_error(why);
  }
  return grpc::Status::OK;
}

// Only the node's administrator ends jobs: root for a system daemon (the
// epilog runs as SlurmdUser), the daemon's own user in user mode.
grpc::Status BerthService::EndJob(grpc::ServerContext* context, const v1::EndJobRequest* request,
                                  v1::EndJobReply* reply) {
  auto caller = Authenticate(*context);
  if (!caller.ok()) return rpc::ToGrpcStatus(caller.status());
  if ((*caller)->uid != ::geteuid()) {
    return rpc::ToGrpcStatus(absl::PermissionDeniedError(
        "ending a job's containers is for root (the Slurm epilog), not uid " +
        std::to_string((*caller)->uid)));
  }
  const std::string& job = request->job_id();
  if (job.empty() || job.size() > 10 || job.find_first_not_of("0123456789") != std::string::npos) {
    return rpc::ToGrpcStatus(
        absl::InvalidArgumentError("job id '" + job + "' is not a Slurm job id (decimal)"));
  }
  int ended = 0;
  if (shared_ != nullptr) {
    std::optional<uid_t> uid;
    if (!request->any_uid()) uid = request->uid();
    ended = shared_->EndJob(job, uid);
  }
  spdlog::info("uid {} ended job {}: {} shared container(s)", (*caller)->uid, job, ended);
  reply->set_ended(ended);
  return grpc::Status::OK;
}

grpc::Status BerthService::Version(grpc::ServerContext* context,
                                   const v1::VersionRequest* /*request*/, v1::VersionReply* reply) {
  return rpc::ToGrpcStatus(DoVersion(*context, *reply));
}

absl::StatusOr<std::shared_ptr<const PeerIdentity>> BerthService::Authenticate(
    const grpc::ServerContext& context) const {
  auto peer = peers_.IdentifyCall(context.peer());
  if (!peer.ok()) spdlog::warn("refusing a call: {}", std::string(peer.status().message()));
  return peer;
}

absl::Status BerthService::DoVersion(const grpc::ServerContext& context,
                                     v1::VersionReply& reply) const {
  ASSIGN_OR_RETURN(std::shared_ptr<const PeerIdentity> caller, Authenticate(context));
  spdlog::debug("Version from {}", DescribePeer(*caller));
  reply.set_version(BERTH_VERSION);
  reply.set_mode(WireMode(options_.mode));
  FillCaller(*caller, *reply.mutable_caller());
  return absl::OkStatus();
}

}  // namespace berth::daemon
