#include "client/action/mpi_command.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "client/action/action_flags.h"
#include "client/action/run_session.h"
#include "client/rpc/daemon_locator.h"
#include "client/trust/keyrings.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "mpi/detect.h"

namespace berth::client {
namespace {

struct CheckState {
  std::string image;
  std::string stack;
  bool json = false;
};

absl::Status Check(const CheckState& state, const std::string& socket_flag, int& exit_code) {
  sigset_t signals = BlockForwardedSignals();
  ActionFlags flags;
  flags.mpi = state.stack.empty() ? "default" : state.stack;
  ASSIGN_OR_RETURN(v1::RunRequest request,
                   BuildRunRequest(v1::ACTION_EXEC, state.image, {"true"}, flags));
  // Asks the daemon to describe the plan (daemon/service/mpi_run.h); with
  // --json the description is one JSON object, printed on stdout, also when
  // the stack is refused (the FATAL line then says why, on stderr).
  request.add_env(state.json ? "BERTH_MPI_EXPLAIN=json" : "BERTH_MPI_EXPLAIN=1");
  NoticeSink json_out;
  if (state.json) {
    json_out = [](const std::string& line) {
      if (line.empty() || line.front() != '{') return false;
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
      return true;
    };
  }
  ASSIGN_OR_RETURN(std::string socket, LocateDaemon(socket_flag, false));
  ASSIGN_OR_RETURN(exit_code, RunSession(socket, std::move(request), {}, signals, json_out));
  if (exit_code == 0 && !state.json)
    std::printf("ok: %s runs with MPI stack %s\n", state.image.c_str(), flags.mpi.c_str());
  return absl::OkStatus();
}

struct DetectState {
  std::string name;
  std::string family = "mpich";
  bool force = false;
};

// Writes <config-dir>/mpi.d/NAME.toml, 0644, never over an existing stack
// unless asked; the daemon reads it only when root owns it.
absl::Status WriteStack(const std::string& name, const std::string& toml, bool force) {
  std::string dir = ConfigDir() + "/mpi.d";
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus(dir, errno);
  std::string path = dir + "/" + name + ".toml";
  int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | (force ? O_TRUNC : O_EXCL);
  auto fd = OpenFile(path, flags, 0644);
  if (!fd.ok()) {
    return Annotate(fd.status(),
                    absl::StrCat("writing ", path, force ? "" : " (--force replaces it)"));
  }
  RETURN_IF_ERROR(
      WriteAll(fd->get(), {reinterpret_cast<const uint8_t*>(toml.data()), toml.size()}));
  std::printf("wrote %s\n", path.c_str());
  return absl::OkStatus();
}

absl::Status Detect(const DetectState& state) {
  if (state.family != "mpich" && state.family != "openmpi") {
    return absl::InvalidArgumentError("--family must be mpich or openmpi");
  }
  if (!state.name.empty() && !mpi::IsValidStackName(state.name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--name '", state.name, "' is not a stack name (letters, digits, '_', '-')"));
  }
  mpi::MpiFamily family =
      state.family == "openmpi" ? mpi::MpiFamily::kOpenMpi : mpi::MpiFamily::kMpich;
  ASSIGN_OR_RETURN(mpi::Stack stack,
                   mpi::DetectHostStack(family, state.name.empty() ? state.family : state.name,
                                        "/etc/ld.so.cache"));
  std::string toml = mpi::StackToToml(stack);
  if (state.name.empty()) {
    std::fputs(toml.c_str(), stdout);
    return absl::OkStatus();
  }
  return WriteStack(state.name, toml, state.force);
}

void AddDetect(CLI::App& mpi, std::shared_ptr<absl::Status> result) {
  auto state = std::make_shared<DetectState>();
  CLI::App* detect = mpi.add_subcommand(
      "detect", "write a stack from the host's MPI (root; printed without --name)");
  detect->add_option("--name", state->name, "write <config-dir>/mpi.d/NAME.toml");
  detect->add_option("--family", state->family, "mpich (default) or openmpi");
  detect->add_flag("--force", state->force, "replace an existing stack of that name");
  detect->callback([state, result] { *result = Detect(*state); });
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
  check->add_flag("--json", state->json, "the same as one JSON object, for scripts");
  check->add_option("image", state->image, "SIF image")->required();
  check->callback([state, &socket_flag, result, exit_code] {
    *result = Check(*state, socket_flag, *exit_code);
  });
  AddDetect(*mpi, result);
}

}  // namespace berth::client
