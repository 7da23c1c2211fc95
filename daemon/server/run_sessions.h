// Run sessions: connections whose preamble asked for one run / exec / shell
// (proto/run_wire.h) instead of gRPC.
//
// Each session gets a thread of its own for the container's life (as a gRPC
// call held one of gRPC's), talking through a RunChannel. The set bounds
// what a caller can hold: sessions per uid (beyond the containers berth.conf
// allows it, a few may wait for their request), all sessions together, and
// the time a session may take to send its request. At shutdown every
// session is cancelled after a grace period and joined.
//
// Privilege: runs as the daemon; the handler decides what a session may do.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "berth/v1/berth.pb.h"
#include "common/unique_fd.h"
#include "daemon/server/peer_identity.h"

namespace berth::daemon {

// One session's conversation with its client.
class RunChannel {
 public:
  virtual ~RunChannel() = default;
  // The first message, which must arrive within the request deadline.
  virtual absl::Status ReadFirst(v1::RunInput& in) = 0;
  // Blocks for the next message; false at the end of the stream, on an error
  // or once cancelled.
  virtual bool Read(v1::RunInput& in) = 0;
  virtual bool Write(const v1::RunOutput& out) = 0;
  // Ends the session's blocking reads (Read returns false) and writes that
  // wait for room: the daemon is shutting down, or the client stopped
  // answering.
  virtual void Cancel() = 0;
};

using RunSessionHandler =
    std::function<absl::Status(RunChannel&, std::shared_ptr<const PeerIdentity>)>;

// Sends a run-session client the Failed message `why` (best effort: the
// socket is non-blocking) before its connection is closed.
void RefuseRunSession(int fd, const absl::Status& why);

struct RunSessionLimits {
  size_t per_uid = 64;  // max_sessions_per_user
  size_t total = 4096;
  absl::Duration request_deadline = absl::Seconds(5);
};

class RunSessions {
 public:
  RunSessions(RunSessionHandler handler, RunSessionLimits limits);
  ~RunSessions();  // Shutdown(zero grace) if not done

  // Starts a session on `conn` (non-blocking socket) for `peer`, whose
  // preamble descriptors are in peer.handed_fds. Over a limit, the client
  // gets a Failed message naming it and the connection is closed.
  void Start(UniqueFd conn, PeerIdentity peer);

  // Lets running sessions finish for `grace`, cancels the rest, joins all.
  void Shutdown(absl::Duration grace);

  size_t size() const;

 private:
  struct Session;

  void Serve(Session* session);
  void JoinFinished();

  RunSessionHandler handler_;
  RunSessionLimits limits_;
  mutable absl::Mutex mu_;
  std::list<std::unique_ptr<Session>> sessions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uid_t, size_t> per_uid_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace berth::daemon
