// Per-user budgets of what a connection makes the daemon hold: the
// connection itself (a descriptor, from accept until it is closed) and the
// descriptors handed over in its preamble (fd_handoff.h), counted from their
// arrival until the daemon has closed them.
//
// berthd serves every user of the node from one descriptor table. Without a
// budget one user could fill it (connections each passing 64 descriptors)
// and every other user's request would fail at accept. Each user may hold
// at most `connections_per_user` connections (pending, gRPC and run sessions
// together) and `handed_fds_per_user` handed descriptors; the accept loop
// refuses what is over (rpc_server.h), naming the setting.
//
// A Charge is the held share: it returns to the budget when destroyed, so
// it travels with what it counts (the connection's PeerIdentity, a
// HandedFds) and nothing has to remember to give it back.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace berth::daemon {

struct ConnectionLimits {
  size_t connections_per_user = 512;
  size_t pending_per_user = 16;  // awaiting their preamble (rpc_server.cc)
  size_t handed_fds_per_user = 1024;
};

class ConnectionBudget;

enum class Held { kConnections, kHandedFds };

// `n` of one user's `what`, returned to the budget when destroyed.
class Charge {
 public:
  Charge() = default;
  Charge(Charge&& other) noexcept;
  Charge& operator=(Charge&& other) noexcept;
  ~Charge() { Return(); }

  // Gives the share back now.
  void Return();

 private:
  friend class ConnectionBudget;
  Charge(ConnectionBudget* budget, uid_t uid, Held what, size_t n)
      : budget_(budget), uid_(uid), what_(what), n_(n) {}

  ConnectionBudget* budget_ = nullptr;
  uid_t uid_ = 0;
  Held what_ = Held::kConnections;
  size_t n_ = 0;
};

class ConnectionBudget {
 public:
  explicit ConnectionBudget(ConnectionLimits limits) : limits_(limits) {}
  ConnectionBudget(const ConnectionBudget&) = delete;
  ConnectionBudget& operator=(const ConnectionBudget&) = delete;

  // Takes `n` of `uid`'s `what`, or says which limit it would exceed
  // (kResourceExhausted, naming the berth.conf setting).
  absl::StatusOr<Charge> Take(uid_t uid, Held what, size_t n);

  size_t HeldBy(uid_t uid, Held what) const;
  // The user holding the most (connections and handed descriptors
  // together), if anyone holds anything.
  std::optional<uid_t> Heaviest() const;
  const ConnectionLimits& limits() const { return limits_; }

 private:
  friend class Charge;
  struct Counts {
    size_t connections = 0;
    size_t handed_fds = 0;
    size_t& Of(Held what) { return what == Held::kConnections ? connections : handed_fds; }
  };
  void Give(uid_t uid, Held what, size_t n);

  const ConnectionLimits limits_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<uid_t, Counts> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::daemon
