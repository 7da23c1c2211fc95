// Connections the accept loop holds while their preamble (fd_handoff.h) has
// not arrived, and how their slots are shared between users.
//
// Clients send the preamble right after connect(), so a connection usually
// never waits here; those that do are bounded three ways. Each waits at
// most a short deadline. Each user holds at most `per_user` slots: a new
// one pushes out that user's oldest. And all users together hold at most
// `total`: a newcomer pushes out the oldest connection of the user holding
// the most slots. Silent connections therefore cost their own user first
// and never keep another user's connection from being read.
//
// Used by the accept loop's thread only.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/unique_fd.h"
#include "daemon/server/peer_identity.h"

namespace berth::daemon {

struct PendingConnection {
  UniqueFd conn;
  PeerIdentity peer;
  std::chrono::steady_clock::time_point deadline;
};

class PendingConnections {
 public:
  PendingConnections(size_t per_user, size_t total) : per_user_(per_user), total_(total) {}

  // Adds `p`, first shedding as the file comment says.
  void Add(PendingConnection p);

  // One pollfd (POLLIN) per pending connection, oldest first, appended.
  void AppendPollFds(std::vector<pollfd>& fds) const;

  // Given the revents of AppendPollFds' entries (same order, nothing added
  // or removed since), offers each ready connection to `complete`, which
  // returns true when it is finished with it; those, and those past their
  // deadline, are dropped.
  void Service(std::span<const pollfd> polled,
               const std::function<bool(PendingConnection&)>& complete);

  // Drops every pending connection of `uid`; returns how many.
  size_t ShedUser(uid_t uid);

  // Milliseconds until the next deadline (at most `cap`; `cap` when none).
  int MillisToNextDeadline(int cap) const;

  size_t size() const { return list_.size(); }
  size_t HeldBy(uid_t uid) const;

 private:
  void DropAt(size_t index, const char* why);
  // The index of the oldest connection of the user holding the most slots.
  size_t OldestOfHeaviest() const;
  size_t OldestOf(uid_t uid) const;

  size_t per_user_;
  size_t total_;
  std::deque<PendingConnection> list_;  // oldest first
  absl::flat_hash_map<uid_t, size_t> per_uid_;
};

}  // namespace berth::daemon
