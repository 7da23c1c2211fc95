// A pseudo-terminal for a container whose caller is on a terminal: the
// container gets the slave as its controlling terminal (job control, line
// discipline, ^C as SIGINT), the daemon relays the master to the client.
//
// Privilege: allocated by the daemon; the slave is handed to the caller's
// uid so the payload (running as the caller) owns its terminal.
#pragma once

#include <sys/types.h>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace berth::daemon {

struct Pty {
  UniqueFd master;
  UniqueFd slave;
};

// Opens a pty pair, sized rows x cols, with the slave owned by `uid`/`gid`.
absl::StatusOr<Pty> OpenPty(uid_t uid, gid_t gid, unsigned rows, unsigned cols);

absl::Status ResizePty(int master, unsigned rows, unsigned cols);

}  // namespace berth::daemon
