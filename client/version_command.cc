#include "client/version_command.h"

#include <cstdio>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "berth/v1/berth.grpc.pb.h"
#include "client/rpc/daemon_channel.h"
#include "client/rpc/daemon_locator.h"
#include "common/status_macros.h"
#include "proto/status_mapping.h"

namespace berth::client {
namespace {

constexpr absl::Duration kCallTimeout = absl::Seconds(10);

const char* ModeName(v1::DaemonMode mode) {
  switch (mode) {
    case v1::DAEMON_MODE_SYSTEM:
      return "system";
    case v1::DAEMON_MODE_USER:
      return "user";
    default:
      return "unknown";
  }
}

absl::StatusOr<v1::VersionReply> CallVersion(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::Berth::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
  v1::VersionReply reply;
  grpc::Status status = stub->Version(&context, v1::VersionRequest(), &reply);
  if (!status.ok()) return Annotate(rpc::FromGrpcStatus(status), "asking berthd its version");
  return reply;
}

std::string DescribeDaemon(const v1::VersionReply& reply) {
  return absl::StrFormat("berthd version %s (mode %s, you are uid %d gid %d)\n", reply.version(),
                         ModeName(reply.mode()), reply.caller().uid(), reply.caller().gid());
}

absl::Status RunVersion(const std::string& socket_flag) {
  std::printf("berth version %s\n", BERTH_VERSION);
  // The client's line comes first even when the daemon is unreachable.
  std::fflush(stdout);
  ASSIGN_OR_RETURN(std::string socket, LocateDaemon(socket_flag, /*user_daemon_flag=*/false));
  ASSIGN_OR_RETURN(auto channel, ConnectToDaemon(socket));
  ASSIGN_OR_RETURN(v1::VersionReply reply, CallVersion(channel));
  std::fputs(DescribeDaemon(reply).c_str(), stdout);
  return absl::OkStatus();
}

}  // namespace

void RegisterVersionCommand(CLI::App& app, const std::string& socket_flag,
                            std::shared_ptr<absl::Status> result) {
  CLI::App* cmd = app.add_subcommand("version", "Show the versions of berth and of berthd");
  cmd->fallthrough();  // `berth version --socket PATH` works too
  cmd->callback([&socket_flag, result = std::move(result)] { *result = RunVersion(socket_flag); });
}

}  // namespace berth::client
