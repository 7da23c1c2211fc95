// The site's MPI stacks, <config-dir>/mpi.d/NAME.toml (docs/mpi.md): read
// and checked here, applied by daemon/service/mpi_run.h. A stack decides
// what host files go into every container that asks for it, for every user
// of the node, so it is read like berth.conf (root-owned, not writable by
// others, 1 MiB at most) and every entry is checked to be what its key
// says: libraries are sonames, never paths (host files come only from the
// host's loader cache), binds are absolute, normal paths outside /proc,
// /sys and /dev, devices are below /dev with a wildcard only in their last
// component. A bad entry is a one-line error naming the file, the line and
// the rule.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "mpi/stack.h"

namespace berth::daemon::policy {

// Parses one stack file's text; `name` is its file name without ".toml".
absl::StatusOr<mpi::Stack> ParseMpiStack(const std::string& text, const std::string& name,
                                         const std::string& origin);

// Reads <config_dir>/mpi.d/NAME.toml; a missing file is an error naming the
// stacks that exist.
absl::StatusOr<mpi::Stack> LoadMpiStack(const std::string& config_dir, const std::string& name,
                                        bool require_root_owned);

// The names of the stacks in <config_dir>/mpi.d, sorted.
std::vector<std::string> ListMpiStacks(const std::string& config_dir);

}  // namespace berth::daemon::policy
