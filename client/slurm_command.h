// `berth slurm epilog [--job J]`: the Slurm epilog's half of berth (see
// packaging/slurm/epilog.sh): asks berthd to end every shared container of
// the job on this node (holders and ranks, whatever their state), so a job
// whose ranks were killed leaves nothing behind. Idempotent; for root (the
// daemon refuses anyone else). The job comes from --job or SLURM_JOB_ID.
#pragma once

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace berth::client {

void RegisterSlurmCommands(CLI::App& app, const std::string& socket_flag,
                           std::shared_ptr<absl::Status> result);

}  // namespace berth::client
