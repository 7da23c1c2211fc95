// `berth mpi check IMAGE [--stack S]`: what a node's MPI stack will do to an
// image, before a job wastes an allocation. The daemon decides it exactly
// as for `exec --mpi` (the same code reads the stack, the host's and the
// image's libraries), says what it found as INFO lines (MPI families and
// versions, the ABI verdicts and the rule behind them, the glibc guard,
// each library replaced or added, the PMI the launcher offers) and runs
// `true` in the container; a refusal is its one-line error.
#pragma once

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace berth::client {

void RegisterMpiCommand(CLI::App& app, const std::string& socket_flag,
                        std::shared_ptr<absl::Status> result, std::shared_ptr<int> exit_code);

}  // namespace berth::client
