// `berth build`: images from definition files (and from URIs and images, as
// Apptainer converts them). For now the client parses and checks everything
// the full verb takes, and runs `--dry-run` itself; building is for berthd.
#pragma once

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace berth::client {

void RegisterBuildCommand(CLI::App& app, const std::string& socket_flag,
                          std::shared_ptr<absl::Status> result);

}  // namespace berth::client
