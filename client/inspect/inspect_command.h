// `berth inspect` and `berth run-help`: show an image's metadata.
//
// Both run in the client as the calling user, with no daemon round trip.
// They only read a file the user names and can already open, and they read
// it without mounting (see squashfs_reader.h). Flags, output and wording
// follow Apptainer's cmd/internal/cli/inspect.go and run_help_linux.go.
#pragma once

#include <memory>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace berth::client {

// Adds `inspect` and `run-help` to `app`. When one runs, its outcome is
// stored in `*result` for main() to report.
void RegisterInspectCommands(CLI::App& app, std::shared_ptr<absl::Status> result);

}  // namespace berth::client
