// Warnings about refused connections, at most one per user and kind of
// refusal every few seconds (the rest at debug level, counted in the next
// warning): a user flooding the socket must neither flood the daemon's log
// nor slow the accept loop with a syslog call per connection, and one
// reason (too many descriptors) must not hide another (too many
// connections) from the admin. A kind is the reason with its numbers left
// out.
//
// Used by the accept loop's thread only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "daemon/server/peer_identity.h"

namespace berth::daemon {

class RefusalLog {
 public:
  // Logs "WHAT from PEER: WHY".
  void Warn(const PeerIdentity& peer, absl::string_view what, absl::string_view why);

 private:
  struct Last {
    std::chrono::steady_clock::time_point at;
    size_t suppressed = 0;
  };
  absl::flat_hash_map<std::pair<uid_t, std::string>, Last> last_;
};

// The accept loop's one RefusalLog.
RefusalLog& AcceptLoopRefusals();

}  // namespace berth::daemon
