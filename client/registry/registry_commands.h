// The registry verbs: `pull`, `push`, `cache list|clean`, `registry
// login|logout|list`.
//
// The client stays free of network code: it reads the user's credential
// files (as the user), creates the output file (as the user), and lets
// berthd do the transfers through the node cache.
#pragma once

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace berth::client {

void RegisterRegistryCommands(CLI::App& app, const std::string& socket_flag,
                              std::shared_ptr<absl::Status> result);

}  // namespace berth::client
