#include "client/action/mpi_command.h"

#include <cstdio>

#include "client/action/action_flags.h"
#include "client/action/run_session.h"
#include "client/rpc/daemon_locator.h"
#include "common/status_macros.h"

namespace berth::client {
namespace {

struct CheckState {
  std::string image;
  std::string stack;
};

absl::Status Check(const CheckState& state, const std::string& socket_flag, int& exit_code) {
  sigset_t signals = BlockForwardedSignals();
  ActionFlags flags;
  flags.mpi = state.stack.empty() ? "default" : state.stack;
  ASSIGN_OR_RETURN(v1::RunRequest request,
                   BuildRunRequest(v1::ACTION_EXEC, state.image, {"true"}, flags));
  // Asks the daemon to describe the plan (daemon/service/mpi_run.h).
  request.add_env("BERTH_MPI_EXPLAIN=1");
  ASSIGN_OR_RETURN(std::string socket, LocateDaemon(socket_flag, false));
  ASSIGN_OR_RETURN(exit_code, RunSession(socket, std::move(request), {}, signals));
  if (exit_code == 0)
    std::printf("ok: %s runs with MPI stack %s\n", state.image.c_str(), flags.mpi.c_str());
  return absl::OkStatus();
}

}  // namespace

void RegisterMpiCommand(CLI::App& app, const std::string& socket_flag,
                        std::shared_ptr<absl::Status> result, std::shared_ptr<int> exit_code) {
  CLI::App* mpi = app.add_subcommand("mpi", "the node's MPI stacks (docs/mpi.md)");
  mpi->require_subcommand(1);
  auto state = std::make_shared<CheckState>();
  CLI::App* check = mpi->add_subcommand(
      "check", "what --mpi=STACK will do to IMAGE: MPI families, ABI verdict, glibc, binds");
  check->add_option("--stack", state->stack, "the stack (default: berth.conf's default_stack)");
  check->add_option("image", state->image, "SIF image")->required();
  check->callback([state, &socket_flag, result, exit_code] {
    *result = Check(*state, socket_flag, *exit_code);
  });
}

}  // namespace berth::client
