// Which caller is behind each connection berthd has accepted, so that an RPC
// handler can learn who is calling.
//
// gRPC 1.51 does not expose a Unix peer's credentials: on a Unix listening
// port ServerContext::peer() is just "unix:" and the auth context carries no
// credentials. So berthd accepts connections itself, reads the peer identity
// from the kernel, registers it here and only then hands the descriptor to
// gRPC (AddInsecureChannelFromFd).
// gRPC names such a connection "fd:N" in ServerContext::peer(); entries are
// keyed by that N.
//
// Why the descriptor number is a safe key: gRPC closes a connection's fd only
// when its transport is destroyed, and every call holds a reference on its
// transport until the call is finished. So while a handler runs, N still is
// the connection that carried its call; N can be reused, and its entry
// replaced, only once no call from the old connection is alive. Checked
// against gRPC 1.51: a client killed during a 1.5 s handler left that
// handler's call cancelled but its fd open with the same socket inode, and
// connections accepted meanwhile got other numbers; the number was reused
// only after the handler returned.
//
// Each entry also records the socket's inode, as a second line of defence: a
// lookup whose fd no longer holds that socket is refused rather than answered
// with another caller's identity. SweepClosed() drops the entries of
// connections gRPC has closed (there is no close callback to hook), releasing
// their pidfds and their share of the caller's budget (connection_budget.h);
// the accept loop calls it on every accept and every second while entries
// exist. Descriptors a connection handed over and no call has taken within
// a few seconds are closed then too: a client sends its call right after
// connecting, and an idle connection must not keep 64 descriptors open.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "daemon/server/peer_identity.h"

namespace berth::daemon {

class PeerRegistry {
 public:
  // Records `peer` as the caller on connection `fd`, replacing any entry for
  // an earlier connection that had the same descriptor number.
  absl::Status Register(int fd, PeerIdentity peer);

  // The caller behind a call, from ServerContext::peer(). Calls that did not
  // arrive through the accept loop have no identity and are refused.
  absl::StatusOr<std::shared_ptr<const PeerIdentity>> IdentifyCall(
      absl::string_view grpc_peer) const;

  // Forgets connections whose descriptor gRPC has closed, and closes handed
  // descriptors no call took in time.
  void SweepClosed();

  // Closes the handed descriptors no call has taken yet on `uid`'s
  // connections (shedding, when the daemon runs out of descriptors).
  void DropUnclaimedOf(uid_t uid);

  size_t size() const;

 private:
  struct Entry {
    dev_t dev;
    ino_t ino;
    std::shared_ptr<const PeerIdentity> peer;
    std::chrono::steady_clock::time_point registered;
  };

  mutable absl::Mutex mu_;
  absl::flat_hash_map<int, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::daemon
