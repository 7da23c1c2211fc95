// `berth cdi list [--cdi-dirs DIRS]`: the CDI devices the daemon would give
// a container (--device), each with the spec defining it, and, on stderr,
// the specs it refuses (malformed, not root-owned) and the devices defined
// twice, each with its reason. The daemon reads the specs, with its own
// trust rules, so what is listed is what --device gets.
#pragma once

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace berth::client {

void RegisterCdiCommands(CLI::App& app, const std::string& socket_flag,
                         std::shared_ptr<absl::Status> result);

}  // namespace berth::client
