// `berth mpi detect`: a stack written from what the host has. The MPI
// library of the family asked for (MPICH's libmpich.so.12, or Open MPI's
// libmpi.so.40) is found through the host's loader cache; its dependencies
// are the closure of DT_NEEDED through the same cache (glibc's loader and
// libc excepted: the image keeps its own); plugin directories it is known
// to load from (UCX modules, Open MPI's and PMIx's components) are bound
// when they exist. The result is a starting point for the administrator,
// written as the TOML the daemon reads (daemon/policy/mpi_stacks.h).
//
// Privilege: none; reads the host's loader cache and libraries.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "mpi/library_name.h"
#include "mpi/stack.h"

namespace berth::mpi {

absl::StatusOr<Stack> DetectHostStack(MpiFamily family, const std::string& name,
                                      const std::string& ld_cache);

// The stack as mpi.d TOML.
std::string StackToToml(const Stack& stack);

}  // namespace berth::mpi
