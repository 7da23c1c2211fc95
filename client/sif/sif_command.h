// `berth sif ...`: the siftool/`apptainer sif` verbs on local SIF files.
//
// These run in the client with the caller's own identity (no daemon round
// trip): they only touch files the user names and can already open.
#pragma once

#include <memory>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace berth::client {

// Adds the `sif` command tree to `app`. When a verb runs, its outcome is
// stored in `*result` for main() to report.
void RegisterSifCommands(CLI::App& app, std::shared_ptr<absl::Status> result);

}  // namespace berth::client
