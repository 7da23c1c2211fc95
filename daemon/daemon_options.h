// What berthd was asked to be on its command line: where it listens, where
// its configuration and state live, and whether it serves the whole node
// (system mode, as root) or one user (user mode, as that user).
//
// Kept as a plain struct so every part of the daemon receives the same
// decisions main() made, instead of re-reading flags or the environment.
#pragma once

#include <string>

namespace berth::daemon {

enum class DaemonMode { kSystem, kUser };

inline const char* DaemonModeName(DaemonMode mode) {
  return mode == DaemonMode::kSystem ? "system" : "user";
}

struct DaemonOptions {
  std::string socket_path;
  std::string config_dir;
  std::string state_dir;
  DaemonMode mode = DaemonMode::kSystem;
  // Log to stderr instead of syslog (berthd never forks either way).
  bool foreground = false;
  // Where fakeroot ranges come from. Other paths are for tests only
  // (hidden flags); the files must still be root-owned and not writable by
  // anyone else, as /etc/subuid is.
  std::string subuid_path = "/etc/subuid";
  std::string subgid_path = "/etc/subgid";
  // berth-build-worker; "" = build_service.h's DefaultWorkerPath().
  std::string build_worker;
};

}  // namespace berth::daemon
