// Which berthd a command talks to, starting a private one when needed.
//
// In order:
//   1. `--socket PATH` or BERTH_SOCKET: exactly that daemon.
//   2. The node's system daemon (/run/berth/berthd.sock), unless
//      BERTH_DAEMON=user or --user-daemon asks for a private one. When its
//      socket exists, berth never falls back to a user daemon: a system daemon
//      that does not answer is an error, so a site's policy cannot be side-
//      stepped by stopping it. BERTH_DAEMON=system makes a missing one an error too.
//   3. The user's private daemon at $XDG_RUNTIME_DIR/berth/berthd.sock (or
//      ~/.berth/run/berthd.sock), started on demand as `berthd --user-mode`
//      from beside the berth binary (or PATH), detached, logging to
//      <that dir>/berthd.log.
//
// BERTH_SYSTEM_SOCKET overrides the system socket's path (for tests and
// unusual installs).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace berth::client {

// The socket of the daemon to use; may start a user-mode daemon.
absl::StatusOr<std::string> LocateDaemon(const std::string& socket_flag, bool user_daemon_flag);

}  // namespace berth::client
