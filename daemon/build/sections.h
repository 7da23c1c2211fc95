// Running a definition's scripts: %pre and %setup on the host, %post and
// %test in the build's container; their output goes to the client live.
//
// Host scripts run as the build's fakeroot user on the host's files
// (host_process.h: the caller's rights, never real root), in the client's
// working directory, with APPTAINER_ROOTFS (and SINGULARITY_ROOTFS) naming
// the stage's root for %setup. Container scripts run in a fakeroot
// container made by the launcher on the stage's root (writable for %post), with
// /proc, /sys, a minimal /dev, and the host's /etc/resolv.conf and
// /etc/hosts, in a clean environment, cwd "/" (build.md §3). %test's root is
// read-only, or with --writable-tmpfs an overlay whose upper layer is a
// tmpfs dropped with the container: nothing it writes reaches the image.
//
// The script itself reaches the shell as a descriptor (/proc/self/fd/5),
// so nothing is written into the image for it. A script that fails is
// "while running engine: exit status N (%post, app.def:LINE)".
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "daemon/build/build_context.h"
#include "deffile/definition.h"

namespace berth::daemon::build {

struct ScriptSection {
  std::string name;  // "pre", "setup", "post", "test"
  const deffile::Script* script = nullptr;
  std::string body;  // the text run (%post with %appinstall bodies appended)
};

// %pre (no root yet) and %setup (`rootfs_path` set).
absl::Status RunHostScript(BuildContext& ctx, const ScriptSection& section,
                           const std::string& rootfs_path);

// %post and %test in the container on `rootfs_fd`. `extra_env` is added
// ("K=V"). With `under_fakeroot`, the script runs under the host's
// fakeroot(1), bound into the container (the root-mapped mode).
absl::Status RunContainerScript(BuildContext& ctx, const ScriptSection& section, int rootfs_fd,
                                const std::vector<std::string>& extra_env);

// The script's stdio: /dev/null in, stdout and stderr into one pipe, and
// `body` at descriptor 5 (/proc/self/fd/5), added to `fds`. Returns the
// pipe's read end.
absl::StatusOr<UniqueFd> ScriptStdio(const std::string& body,
                                     std::vector<std::pair<UniqueFd, int>>& fds);

// Relays a process's output from `out` to the client until it closes and
// `pidfd` says the process ended; polls for the client's end.
absl::Status Relay(BuildContext& ctx, int out, int pidfd);

// A host process of the build as the caller (ids, cgroup, working directory
// `cwd_fd`, duplicated): started, recorded with the staging so a daemon
// restart ends it, its output from `out` relayed; its exit status.
absl::StatusOr<int> RunHostProcess(BuildContext& ctx, HostProcessSpec spec, int cwd_fd, int out);

// The container's environment for %post and %test: Apptainer's clean
// build environment plus the client's proxy settings and TERM.
std::vector<std::string> BuildEnvironment(const BuildContext& ctx);

}  // namespace berth::daemon::build
