// A host MPI/fabric stack as site data (<config-dir>/mpi.d/NAME.toml, read
// by the daemon's policy code; written by `berth mpi detect`): what to bind
// into a container and which environment to pass, and the ABI rule that
// decides whether the image's own MPI may be replaced by it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "mpi/abi.h"

namespace berth::mpi {

struct Stack {
  std::string name;
  // Sonames whose image counterparts are ABI-checked and replaced
  // ("libmpich.so.12", "libfabric.so.1"), resolved through the host's loader
  // cache. A trailing '*' matches any version ("libfabric.so.*").
  std::vector<std::string> libraries;
  // Sonames they need, bound too (replacing the image's file of the same
  // soname, else added beside its libc) but never ABI-checked.
  std::vector<std::string> dependencies;
  // Host directories or files bound at the same path, read-only: plugin and
  // configuration directories (Open MPI's components, libfabric providers,
  // UCX modules, /etc/libibverbs.d).
  std::vector<std::string> binds;
  // Device nodes ("/dev/infiniband/*", "/dev/cxi*", "/dev/hfi1*"): bound
  // when the container has a minimal /dev (the host's /dev has them).
  std::vector<std::string> devices;
  // Variables passed even under --cleanenv: names, or prefixes ending in
  // '*' ("PMI_*", "SLURM_*").
  std::vector<std::string> env_pass;
  // Variables set in the container (after the host's).
  std::vector<std::pair<std::string, std::string>> env_set;
  AbiRule abi = AbiRule::kMajor;
};

// A stack's name: [A-Za-z0-9_-], 1..64 characters (it becomes a file name
// in mpi.d, so it never walks out of it).
bool IsValidStackName(const std::string& name);

// Does `name` match a pattern of env_pass ("PMI_*" or an exact name)?
bool EnvPatternMatches(const std::string& pattern, const std::string& name);

// Does `soname` match a library pattern ("libfabric.so.*" or exact)?
bool LibraryPatternMatches(const std::string& pattern, const std::string& soname);

// The variables and prefixes every stack passes, whatever its file says:
// the PMI launchers' and Slurm's (PMI_*, PMIX_*, SLURM_*, OMPI_*,
// MPICH_*, FI_*, UCX_*, ...). `berth mpi detect` writes these.
const std::vector<std::string>& DefaultEnvPass();

}  // namespace berth::mpi
