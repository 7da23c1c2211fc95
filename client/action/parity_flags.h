// Apptainer's action flags that berth takes for parity only, so that a
// script written for Apptainer gets either the same result or one line
// saying why not (docs/compat.md "Audit rows not Y"):
//   - accepted, nothing to do: --no-privs and --drop-caps (a container never
//     holds capabilities), --underlay (missing mount points are always made
//     in a staging layer), --unsquash (the daemon mounts every image), and
//     --tmpdir (the client writes no temporary files);
//   - --runscript-timeout: accepted with a warning (see compat.md);
//   - --containlibs: libraries bound into /.singularity.d/libs, as Apptainer;
//   - refused by name with the reason: --add-caps, --keep-privs,
//     --allow-setuid, --fusemount, --security, --network-args, --dmtcp-*,
//     --docker-host, --docker-login/-username/-password, --passphrase,
//     --pem-path, --ignore-subuid/-userns/-fakeroot-command.
// Only the command line refuses: the environment forms of refused flags are
// ignored, as berth ignores every variable it has no flag for.
// Privilege: none; the client, as the user.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace berth::client {

struct ParityFlags {
  bool no_privs = false, unsquash = false, underlay = false;
  std::vector<std::string> drop_caps;
  std::string tmpdir, runscript_timeout;
  std::vector<std::string> containlibs;
  // Each refused flag's name and whether it was given.
  std::map<std::string, bool> refused_given;
  std::map<std::string, std::string> refused_values;
};

void AddParityFlags(CLI::App& cmd, ParityFlags& flags);

// Refuses a refused flag that was given; warns for --runscript-timeout;
// appends --containlibs (CONTAINLIBS) to `binds` as -B values.
absl::Status ApplyParityFlags(const CLI::App& cmd, ParityFlags& flags,
                              std::vector<std::string>& binds);

// Options of these flags that take a value (for splitting the container's
// arguments off the command line).
bool ParityFlagTakesValue(absl::string_view arg);

}  // namespace berth::client
