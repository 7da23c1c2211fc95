// Runs berthd's gRPC service and its run sessions on its claimed socket
// until SIGTERM or SIGINT.
//
// gRPC does not accept connections here; we do. Each accepted connection's
// caller is read from the kernel; its preamble (fd_handoff.h) then says
// whether it is a run session (run_sessions.h, given the identity with it)
// or gRPC, in which case the caller is registered (peer_registry.h) before
// the descriptor is handed over, so no call can arrive on a connection whose
// caller is unknown. Connections whose peer cannot be identified are closed.
//
// One user must never slow another's connection: each connection and the
// descriptors its preamble carries are charged to its user's budget
// (connection_budget.h) and refused over it; connections still silent wait
// in per-user slots for a second at most (pending_connections.h); and when
// the descriptor table is full anyway, the user holding the most is shed
// and the backlog keeps moving (a reserve descriptor).
//
// Shutdown is synchronous and in this order: stop accepting and remove the
// socket file (new clients fail at once), then let running calls and
// sessions finish for a short grace period, then cancel the rest.
//
// Privilege: runs as the daemon (root in system mode). Accepting and reading
// peer credentials need no privilege, and no call is executed on this thread.
#pragma once

#include <grpcpp/impl/service_type.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "daemon/server/connection_budget.h"
#include "daemon/server/listening_socket.h"
#include "daemon/server/peer_registry.h"
#include "daemon/server/run_sessions.h"

namespace berth::daemon {

// Blocks SIGTERM and SIGINT and returns a signalfd that reports them. Call it
// before any thread starts (gRPC starts its own), so that every thread
// inherits the mask and the signals are only ever seen through the fd.
absl::StatusOr<UniqueFd> BlockShutdownSignals();

// Serves `service` and `sessions` on `listener` until a signal arrives on
// `signal_fd`, charging every connection to its user's `budget`.
absl::Status ServeUntilSignalled(ListeningSocket& listener, PeerRegistry& peers,
                                 grpc::Service& service, RunSessions& sessions,
                                 ConnectionBudget& budget, const UniqueFd& signal_fd);

}  // namespace berth::daemon
