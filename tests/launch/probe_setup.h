// launch_probe's command line and the per-run setup it resolves once
// (identity, descriptors opened as the caller), from which every launch's
// LaunchSpec is built. See launch_probe.cc for the options.
#pragma once

#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "daemon/launch/launch.h"

namespace launch_probe {

struct Options {
  berth::daemon::launch::LaunchSpec settings;  // only its plain fields are used
  std::string rootfs;
  std::vector<std::string> argv;
  std::string cwd;  // --cwd; empty: the probe's own (or $HOME with --contain)
  std::string as_user;
  bool user_mode = false;
  bool no_home = false, no_cwd = false, cgroup_of_self = false;
  std::string home_src, home_dst;
  std::vector<std::string> bind_args;
  std::vector<int> keep_fds;
  bool pty = false;
  bool timing = false;
  int malloc_threads = 0;
  int ballast_mib = 0;  // touched heap, as a daemon's would be
  int parallel = 0;
  int repeat = 1;
};

struct OpenedBind {
  berth::UniqueFd fd;
  std::string source, destination;
  bool read_only = false;
};

// Everything resolved once: who the container runs as and the sources,
// opened with that user's permissions.
struct Setup {
  berth::daemon::launch::Identity identity;
  std::string cwd;
  std::vector<OpenedBind> binds;  // cwd (if bound) last
  bool has_home = false;
  OpenedBind home;
};

[[noreturn]] void Die(const std::string& msg, int code = 125);

// Parses argv into `o`; exits with a message on misuse.
void ParseArgs(int argc, char** argv, Options& o);

// Identity and descriptors; call after EnterUserMode() when --user-mode.
Setup MakeSetup(const Options& o);

// A fresh spec for one launch. `pty_slave` >= 0 becomes fds 0-2 and the
// controlling terminal.
berth::daemon::launch::LaunchSpec BuildSpec(const Options& o, const Setup& setup, int pty_slave);

}  // namespace launch_probe
