// berth: the user-facing command line. It parses Apptainer-compatible verbs,
// runs the local ones (sif) itself and hands everything privileged to berthd.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "client/action/action_command.h"
#include "client/build/build_command.h"
#include "client/cdi/cdi_command.h"
#include "client/cli_log.h"
#include "client/cli_usage.h"
#include "client/clidoc/clidoc_command.h"
#include "client/config/config_command.h"
#include "client/doctor/doctor_command.h"
#include "client/inspect/inspect_command.h"
#include "client/instance/instance_command.h"
#include "client/overlay_command.h"
#include "client/registry/registry_commands.h"
#include "client/sif/sif_command.h"
#include "client/slurm_command.h"
#include "client/trust/trust_commands.h"
#include "client/version_command.h"

namespace {

// Exits without running destructors. gRPC's orderly shutdown joins its
// threads with sleeps (~5 ms, more than a whole request), and once the output
// is flushed a short-lived client has nothing else to clean up: the kernel
// closes its descriptors.
[[noreturn]] void ExitWithoutTeardown(int code) {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(code);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"berth: containers for HPC, compatible with Apptainer/Singularity images", "berth"};
  app.require_subcommand(1);
  berth::client::GlobalFlags global_flags;
  berth::client::AddGlobalFlags(app, global_flags);
  if (!berth::client::ApplyGlobalFlags(argc, argv)) return 255;
  app.set_version_flag("--version", std::string("berth version ") + BERTH_VERSION);
  std::string socket_flag;
  app.add_option("--socket", socket_flag,
                 "berthd's socket (default: $BERTH_SOCKET, else /run/berth/berthd.sock)");
  auto result = std::make_shared<absl::Status>();
  berth::client::RegisterSifCommands(app, result);
  berth::client::RegisterInspectCommands(app, result);
  berth::client::RegisterTrustCommands(app, result);
  berth::client::RegisterConfigCommands(app, result);
  berth::client::RegisterVersionCommand(app, socket_flag, result);
  berth::client::RegisterRegistryCommands(app, socket_flag, result);
  berth::client::RegisterBuildCommand(app, socket_flag, result);
  berth::client::RegisterSlurmCommands(app, socket_flag, result);
  berth::client::RegisterDoctorCommand(app, socket_flag, result);
  berth::client::RegisterCdiCommands(app, socket_flag, result);
  berth::client::RegisterOverlayCommands(app, result);
  auto exit_code = std::make_shared<int>(0);
  berth::client::RegisterActionCommands(app, socket_flag, result, exit_code);
  berth::client::RegisterInstanceCommands(app, socket_flag, result);
  berth::client::RegisterHelpCommand(app);
  berth::client::RegisterCliDocCommands(app, result);
  if (int code = berth::client::ReportUnknownCommand(app, argc, argv); code >= 0) return code;
  berth::client::SplitContainerArguments(argc, argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return berth::client::ReportParseError(app, e);
  }
  if (!result->ok()) {
    // One line, Apptainer's prefix: scripts and users grep for FATAL.
    berth::client::log::Fatal(result->message());
    ExitWithoutTeardown(255);
  }
  // The container's status (0 for verbs that do not run one).
  ExitWithoutTeardown(*exit_code);
}
