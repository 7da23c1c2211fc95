// The action verbs' options (run, exec, shell) with Apptainer's names, and
// their environment forms: BERTH_<FLAG>, APPTAINER_<FLAG>, SINGULARITY_<FLAG>
// (first found wins; a flag on the command line beats all of them).
#pragma once

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "berth/v1/berth.pb.h"
#include "client/action/limit_flags.h"
#include "client/action/network_flags.h"
#include "client/action/parity_flags.h"

namespace berth::client {

struct ActionFlags {
  std::vector<std::string> binds;
  std::vector<std::string> mounts;  // --mount specs, one bind each
  bool contain = false, containall = false, cleanenv = false;
  std::vector<std::string> env, env_files;
  std::string home;
  bool no_home = false;
  std::vector<std::string> no_mount;
  std::string pwd;
  bool writable = false;
  bool writable_tmpfs = false;
  std::vector<std::string> overlays;  // -o/--overlay PATH[:ro]
  uint64_t tmpfs_size_mib = 0;
  bool fakeroot = false, userns = false, ipc = false, pid = false, no_pid = false;
  std::string hostname;
  bool no_init = false;
  bool no_eval = false;
  bool no_umask = false;  // --no-umask: 0022 in the container instead of the caller's
  // --compat: Apptainer's OCI-like set (--containall --no-init --no-umask
  // --no-eval --writable-tmpfs), folded in by BuildRunRequest.
  bool compat = false;
  std::vector<std::string> scratch;  // -S: container paths for private scratch dirs
  std::string workdir;               // -W: host dir for /tmp, /var/tmp, home, scratch
  std::string shell;
  std::string app;  // --app: a SCIF app
  std::vector<int> keep_fds;
  // MPI and Slurm (docs/mpi.md): share the parent's container / never share.
  bool sharens = false, no_sharens = false;
  // --mpi[=STACK]: a host MPI stack of the daemon's mpi.d; "default" for
  // berth.conf's; empty: none asked.
  std::string mpi;
  bool nv = false, no_nv = false, rocm = false, no_rocm = false;
  std::vector<std::string> devices, cdi_dirs;
  LimitFlags limits;  // cgroup limits
  NetworkFlags network;
  ParityFlags parity;  // Apptainer flags taken for parity (parity_flags.h)
};

// Adds the flags to one verb's subcommand.
void AddActionFlags(CLI::App& cmd, ActionFlags& flags);

// Fills flags the command line left unset from their environment forms.
absl::Status ApplyEnvironmentDefaults(const CLI::App& cmd, ActionFlags& flags);

// The request for `action` on `image` with `args`, from the caller's own
// process state (cwd, environment, umask) and flags. Reads --env-file files
// here, with the caller's permissions.
absl::StatusOr<v1::RunRequest> BuildRunRequest(v1::Action action, const std::string& image,
                                               const std::vector<std::string>& args,
                                               const ActionFlags& flags);

}  // namespace berth::client
