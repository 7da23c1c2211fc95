// BerthService's instance verbs (berth_service.h): list and stop.
//
// Who sees what: a caller sees and stops only their own instances. Root (the
// daemon's own user in user mode) names a user (-u) or everyone (--all of
// list) to reach others'; a plain user who asks for that is refused, never
// silently narrowed.
#include <pwd.h>
#include <unistd.h>

#include <csignal>
#include <ctime>
#include <optional>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "daemon/instance/instance_name.h"
#include "daemon/instance/instance_stats.h"
#include "daemon/service/berth_service.h"
#include "proto/status_mapping.h"
#include "spdlog/spdlog.h"

namespace berth::daemon {
namespace {

constexpr int kDefaultStopSeconds = 10;
constexpr int kMaxStopSeconds = 3600;

// Whose instances a request reaches: the caller's, `user`'s (root), or
// everyone's (root, `all`; nullopt).
absl::StatusOr<std::optional<uid_t>> Scope(const PeerIdentity& caller, const std::string& user,
                                           bool all) {
  bool admin = caller.uid == ::geteuid();
  if (user.empty() && !all) return std::optional<uid_t>(caller.uid);
  if (!admin) {
    return absl::PermissionDeniedError(
        "only root may see or stop other users' instances (-u/--user, --all)");
  }
  if (all && user.empty()) return std::optional<uid_t>();
  if (user.size() > 256) return absl::InvalidArgumentError("user name longer than 256 bytes");
  std::vector<char> buf(16384);
  passwd pw{}, *found = nullptr;
  if (::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    uid_t uid;
    if (absl::SimpleAtoi(user, &uid)) return std::optional<uid_t>(uid);
    return absl::NotFoundError(absl::StrCat("no such user: ", user));
  }
  return std::optional<uid_t>(pw.pw_uid);
}

void FillInfo(const instance::InstanceRecord& r, v1::InstanceInfo& info) {
  info.set_name(r.name);
  info.set_uid(r.uid);
  info.set_user(r.user);
  info.set_pid(r.pid);
  info.set_image(r.image);
  info.set_log_out_path(r.log_out);
  info.set_log_err_path(r.log_err);
  info.set_restarts(r.restarts);
  info.set_started_unix(r.started_unix);
}

}  // namespace

grpc::Status BerthService::InstanceList(grpc::ServerContext* context,
                                        const v1::InstanceListRequest* request,
                                        v1::InstanceListReply* reply) {
  auto caller = Authenticate(*context);
  if (!caller.ok()) return rpc::ToGrpcStatus(caller.status());
  absl::Status pattern = instance::CheckPattern(request->pattern());
  if (!pattern.ok()) return rpc::ToGrpcStatus(pattern);
  auto scope = Scope(**caller, request->user(), request->all_users());
  if (!scope.ok()) return rpc::ToGrpcStatus(scope.status());
  if (instances_ == nullptr) return grpc::Status::OK;
  for (const auto& r : instances_->List(*scope, request->pattern())) {
    FillInfo(r, *reply->add_instances());
  }
  return grpc::Status::OK;
}

grpc::Status BerthService::InstanceStop(grpc::ServerContext* context,
                                        const v1::InstanceStopRequest* request,
                                        v1::InstanceStopReply* reply) {
  auto caller = Authenticate(*context);
  if (!caller.ok()) return rpc::ToGrpcStatus(caller.status());
  absl::Status pattern = instance::CheckPattern(request->pattern());
  if (!pattern.ok()) return rpc::ToGrpcStatus(pattern);
  if (request->pattern().empty() && !request->all()) {
    return rpc::ToGrpcStatus(
        absl::InvalidArgumentError("instance stop needs an instance name, a glob, or --all"));
  }
  int sig = request->signal() == 0 ? SIGINT : request->signal();
  if (sig < 1 || sig > SIGRTMAX) {
    return rpc::ToGrpcStatus(
        absl::InvalidArgumentError(absl::StrCat("signal ", request->signal(), " is not a signal")));
  }
  int seconds = request->timeout_seconds() == 0 ? kDefaultStopSeconds : request->timeout_seconds();
  if (seconds < 0 || seconds > kMaxStopSeconds) {
    return rpc::ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("--timeout must be between 1 and ", kMaxStopSeconds, " seconds")));
  }
  auto scope = Scope(**caller, request->user(), /*all=*/false);
  if (!scope.ok()) return rpc::ToGrpcStatus(scope.status());
  std::vector<instance::InstanceRecord> stopped;
  if (instances_ != nullptr) {
    stopped = instances_->Stop(*scope, request->all() ? "" : request->pattern(), sig,
                               absl::Seconds(seconds), request->force());
  }
  if (stopped.empty()) {
    return rpc::ToGrpcStatus(absl::NotFoundError(
        request->all() ? std::string("no instance to stop")
                       : absl::StrCat("no instance found with name ", request->pattern())));
  }
  spdlog::info("uid {} stopped {} instance(s)", (*caller)->uid, stopped.size());
  for (const auto& r : stopped) FillInfo(r, *reply->add_stopped());
  return grpc::Status::OK;
}

grpc::Status BerthService::InstanceStats(grpc::ServerContext* context,
                                         const v1::InstanceStatsRequest* request,
                                         v1::InstanceStatsReply* reply) {
  auto caller = Authenticate(*context);
  if (!caller.ok()) return rpc::ToGrpcStatus(caller.status());
  absl::Status name = instance::CheckName(request->name());
  if (!name.ok()) return rpc::ToGrpcStatus(name);
  auto scope = Scope(**caller, request->user(), /*all=*/false);
  if (!scope.ok()) return rpc::ToGrpcStatus(scope.status());
  std::shared_ptr<instance::Instance> found;
  if (instances_ != nullptr) found = instances_->Find(**scope, request->name());
  if (found == nullptr) {
    return rpc::ToGrpcStatus(
        absl::NotFoundError(absl::StrCat("no instance found with name ", request->name())));
  }
  // Its own cgroup; never silently another's figures.
  std::shared_ptr<cgroup::ContainerCgroup> cg = found->cgroup();
  auto stats = cg != nullptr ? instance::ReadCgroupStatsIn(cg->dirs())
                             : instance::ReadCgroupStats(found->record.pid);
  if (!stats.ok()) {
    return rpc::ToGrpcStatus(Annotate(stats.status(), "reading the instance's cgroup"));
  }
  reply->set_own_cgroup(cg != nullptr);
  if (cg == nullptr) {
    reply->set_note(absl::StrCat(
        "instance ", request->name(),
        " has no cgroup of its own (berthd could not make one: its cgroup is not delegated to it); "
        "these figures are those of ",
        stats->cgroup, ", which it shares with berthd"));
  }
  FillInfo(found->record, *reply->mutable_instance());
  reply->set_cgroup(stats->cgroup);
  reply->set_cpu_usage_ns(stats->cpu_usage_ns);
  reply->set_cpu_user_ns(stats->cpu_user_ns);
  reply->set_cpu_system_ns(stats->cpu_system_ns);
  reply->set_memory_usage(stats->memory_usage);
  reply->set_memory_limit(stats->memory_limit);
  reply->set_pids_current(stats->pids_current);
  reply->set_pids_limit(stats->pids_limit);
  reply->set_io_read_bytes(stats->io_read_bytes);
  reply->set_io_write_bytes(stats->io_write_bytes);
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  reply->set_sampled_ns(int64_t{now.tv_sec} * 1000000000 + now.tv_nsec);
  return grpc::Status::OK;
}

}  // namespace berth::daemon
