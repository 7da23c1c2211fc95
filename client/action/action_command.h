// `berth run | exec | shell`: Apptainer's action verbs, served by berthd.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace berth::client {

// Registers the verbs. `exit_code` receives the container's status, which
// main() exits with when `result` is OK.
void RegisterActionCommands(CLI::App& app, const std::string& socket_flag,
                            std::shared_ptr<absl::Status> result, std::shared_ptr<int> exit_code);

// Apptainer stops option parsing at the image: everything after it is the
// container's command line, options included (`berth exec img ls -la`,
// `berth run img --help`). Call before CLI11 parses: it shortens `argc` to end
// at the image of a run/exec/shell verb and keeps the rest for the verb.
// `berth instance start|run IMAGE NAME ARGS...` is split the same way, after
// the name.
void SplitContainerArguments(int& argc, char** argv);

// What SplitContainerArguments kept for the container.
const std::vector<std::string>& SplitArguments();

}  // namespace berth::client
