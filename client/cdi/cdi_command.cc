#include "client/cdi/cdi_command.h"

#include <unistd.h>

#include <climits>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "berth/v1/berth.grpc.pb.h"
#include "client/cli_log.h"
#include "client/rpc/daemon_channel.h"
#include "client/rpc/daemon_locator.h"
#include "common/status_macros.h"
#include "proto/status_mapping.h"

namespace berth::client {
namespace {

std::string Absolute(const std::string& path) {
  if (!path.empty() && path.front() == '/') return path;
  char cwd[PATH_MAX];
  return ::getcwd(cwd, sizeof cwd) == nullptr ? path : absl::StrCat(cwd, "/", path);
}

absl::Status RunCdiList(const std::string& socket_flag, const std::vector<std::string>& dirs) {
  ASSIGN_OR_RETURN(std::string socket, LocateDaemon(socket_flag, false));
  ASSIGN_OR_RETURN(auto channel, ConnectToDaemon(socket));
  auto stub = v1::Berth::NewStub(channel);
  grpc::ClientContext context;
  v1::CdiListRequest request;
  for (const std::string& d : dirs) request.add_cdi_dirs(Absolute(d));
  v1::CdiListReply reply;
  grpc::Status status = stub->CdiList(&context, request, &reply);
  if (!status.ok()) return Annotate(rpc::FromGrpcStatus(status), "listing CDI devices");
  for (const v1::CdiProblem& p : reply.broken()) {
    log::Warning(absl::StrCat("CDI spec ", p.what(), " refused: ", p.error()));
  }
  for (const v1::CdiProblem& p : reply.conflicts()) {
    log::Warning(absl::StrCat("CDI device ", p.what(), " is ", p.error()));
  }
  std::string searched = absl::StrJoin(reply.dirs(), ", ");
  if (reply.devices().empty()) {
    std::printf("No CDI devices in %s.\n", searched.empty() ? "no directory" : searched.c_str());
    return absl::OkStatus();
  }
  std::printf("%-40s %s\n", "DEVICE", "SPEC");
  for (const v1::CdiDeviceEntry& e : reply.devices()) {
    std::printf("%-40s %s\n", e.name().c_str(), e.spec().c_str());
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterCdiCommands(CLI::App& app, const std::string& socket_flag,
                         std::shared_ptr<absl::Status> result) {
  CLI::App* cdi = app.add_subcommand("cdi", "CDI (Container Device Interface) devices");
  cdi->require_subcommand(1);
  auto dirs = std::make_shared<std::vector<std::string>>();
  CLI::App* list = cdi->add_subcommand("list", "List the CDI devices --device can name");
  list->add_option("--cdi-dirs", *dirs, "spec directories instead of the node's")->delimiter(',');
  list->callback([&socket_flag, result, dirs] { *result = RunCdiList(socket_flag, *dirs); });
}

}  // namespace berth::client
