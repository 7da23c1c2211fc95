// Bases a package tool of the build host makes: `Bootstrap: debootstrap`,
// `yum`/`dnf` and `zypper` (formats.md §5.2), as Apptainer's conveyor
// packers make them, then Apptainer's base environment and an empty
// `#!/bin/sh` runscript over the result.
//
// The tool (found by the daemon in a fixed PATH, never the caller's) runs
// as a host process of the build (host_process.h): in a user namespace of
// the caller's fakeroot ids, with private mount and PID namespaces, writing
// into the stage's root. It can write what the caller and the caller's
// subordinate ids can write, nothing else; device nodes it cannot make
// (/dev/null and the like are bound from the host in its private mount
// namespace, as Apptainer does in its fakeroot build, and vanish with it);
// the set-id files it installs belong to the caller or their range.
//
// Which ids (build.md §3: debootstrap only works in the subuid mode):
//   a plain user   the caller at 0 and their subuid/subgid range at 1..N;
//                  without a range the build is refused, naming
//                  `berth config fakeroot --add USER`;
//   root           (system mode) every host id mapped to itself: the tool
//                  owns files as real root does, but holds no capability
//                  outside its namespaces (no device nodes, no host mounts);
//   user mode      refused: that daemon cannot map a range.
//
// Header problems are reported before the tool is looked for, so that they
// show on hosts without it. A tool that fails is "while debootstrapping:
// exit status N" (yum: "while bootstrapping", zypper: "while bootstrapping
// from zypper"), after its output and, for debootstrap, its log's tail.
//
// Privilege: the daemon's for starting the process and writing its maps;
// everything else runs as the caller's fakeroot user.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "daemon/build/build_context.h"
#include "deffile/definition.h"

namespace berth::daemon::build {

// Makes `stage`'s base in the empty root `root_fd` (at `root_path`, which
// the tool is given).
absl::Status RunBootstrapTool(BuildContext& ctx, const deffile::Definition& stage, int root_fd,
                              const std::string& root_path);

}  // namespace berth::daemon::build
