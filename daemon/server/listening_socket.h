// The daemon's end of its Unix socket (/run/berth/berthd.sock by default):
// making its directory, making sure no other daemon owns the path, binding it
// with the mode the daemon's mode calls for, and removing it on shutdown.
//
// Privilege: in system mode this runs as root. The directory is created
// root-owned 0755 and the socket made 0666, because every local user may
// connect: who they are is read from the kernel for each connection
// (peer_identity.h), so reaching the socket grants nothing by itself. In user
// mode the directory is 0700 and the socket 0600: only that user may connect.
// An existing directory must belong to the daemon's user and be writable by
// nobody else, or another user could swap the socket under us.
//
// Two daemons must never share a path. A lock file beside the socket
// (PATH.lock, flock'ed for the daemon's lifetime) settles two daemons starting
// at once; a connect() test then catches a live daemon that holds no lock.
// Only a socket file nobody answers on, left by a daemon that died without
// cleaning up, is removed. The lock file stays after shutdown: deleting it
// would let a third daemon lock a fresh file while a second holds the old one.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "daemon/daemon_options.h"

namespace berth::daemon {

class ListeningSocket {
 public:
  // Claims `path` for this daemon and starts listening on it (non-blocking).
  static absl::StatusOr<std::unique_ptr<ListeningSocket>> Claim(const std::string& path,
                                                                DaemonMode mode);
  ~ListeningSocket() { Close(); }
  ListeningSocket(const ListeningSocket&) = delete;
  ListeningSocket& operator=(const ListeningSocket&) = delete;

  int fd() const { return listen_fd_.get(); }
  const std::string& path() const { return path_; }

  // Stops listening and removes the socket file if it still is ours, so new
  // clients fail at once instead of queueing on a daemon that is going away.
  void Close();

 private:
  ListeningSocket(std::string path, UniqueFd lock_fd, UniqueFd listen_fd, ino_t ino);

  std::string path_;
  UniqueFd lock_fd_;
  UniqueFd listen_fd_;
  ino_t socket_ino_;
};

}  // namespace berth::daemon
