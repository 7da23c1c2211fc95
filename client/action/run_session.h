// One run/exec/shell from the client's side: hand the descriptors over,
// send the request as a run session (proto/run_wire.h), forward every signal
// the client receives, relay a pty when the caller is on a terminal, and
// return the container's exit status.
//
// Signals must be blocked before any thread could start (gRPC's, for the
// user-daemon start), or a SIGTERM from Slurm could land on one of them and
// kill the client without the container hearing of it:
// BlockForwardedSignals() is the first thing a verb does.
#pragma once

#include <csignal>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "berth/v1/berth.pb.h"

namespace berth::client {

// Blocks the signals the session forwards; returns the set for signalfd.
sigset_t BlockForwardedSignals();

// Fills request.fds and lists the local descriptors to hand over, in order.
void AddPassedDescriptors(v1::RunRequest& request, bool tty, const std::vector<int>& keep_fds,
                          std::vector<int>& handoff);

// Runs the session on the daemon at `socket_path`; the container's status
// (exit code or 128+signal) on success.
// `on_notice`, when set, sees each of berthd's notices first and keeps the
// ones it returns true for (printed as INFO lines otherwise).
using NoticeSink = std::function<bool(const std::string&)>;
absl::StatusOr<int> RunSession(const std::string& socket_path, v1::RunRequest request,
                               const std::vector<int>& keep_fds, const sigset_t& signals,
                               const NoticeSink& on_notice = nullptr);

// A session whose container outlives it (instance start): hands over
// exactly `handoff` (request.fds must map them), sends the request and
// returns once the daemon reports the start (Started's pid) or its failure.
// No terminal, no signal forwarding.
absl::StatusOr<int> RunDetachedSession(const std::string& socket_path, v1::RunRequest request,
                                       const std::vector<int>& handoff);

}  // namespace berth::client
