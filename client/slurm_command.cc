#include "client/slurm_command.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "berth/v1/berth.grpc.pb.h"
#include "client/rpc/daemon_channel.h"
#include "client/rpc/daemon_locator.h"
#include "common/status_macros.h"
#include "proto/status_mapping.h"

namespace berth::client {
namespace {

constexpr absl::Duration kCallTimeout = absl::Seconds(30);

absl::Status RunEpilog(const std::string& socket_flag, std::string job) {
  if (job.empty()) {
    const char* env = std::getenv("SLURM_JOB_ID");
    if (env == nullptr || *env == '\0') {
      return absl::InvalidArgumentError(
          "slurm epilog: no job (--job, or SLURM_JOB_ID as Slurm sets)");
    }
    job = env;
  }
  ASSIGN_OR_RETURN(std::string socket, LocateDaemon(socket_flag, /*user_daemon_flag=*/false));
  ASSIGN_OR_RETURN(auto channel, ConnectToDaemon(socket));
  auto stub = v1::Berth::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
  v1::EndJobRequest request;
  request.set_job_id(job);
  request.set_any_uid(true);
  v1::EndJobReply reply;
  grpc::Status status = stub->EndJob(&context, request, &reply);
  if (!status.ok()) {
    return Annotate(rpc::FromGrpcStatus(status), absl::StrCat("ending job ", job));
  }
  std::printf("job %s: ended %d shared container(s)\n", job.c_str(), reply.ended());
  return absl::OkStatus();
}

}  // namespace

void RegisterSlurmCommands(CLI::App& app, const std::string& socket_flag,
                           std::shared_ptr<absl::Status> result) {
  CLI::App* slurm = app.add_subcommand("slurm", "Slurm's prolog and epilog (packaging/slurm)");
  slurm->require_subcommand(1);
  auto job = std::make_shared<std::string>();
  CLI::App* epilog = slurm->add_subcommand(
      "epilog", "end every shared container of a job on this node (root; idempotent)");
  epilog->add_option("--job", *job, "the job id (default: $SLURM_JOB_ID)");
  epilog->callback(
      [&socket_flag, job, result = std::move(result)] { *result = RunEpilog(socket_flag, *job); });
}

}  // namespace berth::client
