// berth: the user-facing command line. It parses Apptainer-compatible verbs,
// runs the local ones (sif) itself and hands everything privileged to berthd.
#include <cstdio>
#include <memory>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "client/sif/sif_command.h"

int main(int argc, char** argv) {
  CLI::App app{"berth: containers for HPC, compatible with Apptainer/Singularity images"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("berth version ") + BERTH_VERSION);
  auto result = std::make_shared<absl::Status>();
  berth::client::RegisterSifCommands(app, result);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!result->ok()) {
    // One line, Apptainer's prefix: scripts and users grep for FATAL.
    std::fprintf(stderr, "FATAL:   %s\n", std::string(result->message()).c_str());
    return 255;
  }
  return 0;
}
