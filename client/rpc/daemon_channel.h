// How the client finds and reaches berthd.
//
// Which socket to use is daemon_locator.h's question; this file connects.
//
// The client connects the socket itself (gRPC, or a run session, then runs
// over that one connection), so every verb fails the same way, at once, with the reason the
// kernel gave ("No such file or directory", "Connection refused", "Permission
// denied"), instead of each RPC reporting gRPC's own wording after a timeout.
#pragma once

#include <grpcpp/channel.h>

#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"

namespace berth::client {

inline constexpr absl::Duration kConnectTimeout = absl::Seconds(2);

// A channel to the daemon at `socket_path`, over one connection that first
// passes `fds` (fd_handoff.h) — the descriptors a Run places into the
// container. On failure the status message is the whole user-facing line:
// "cannot reach berthd at PATH: ...".
absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectToDaemon(
    const std::string& socket_path, std::span<const int> fds = {},
    absl::Duration timeout = kConnectTimeout);

// A connection to the daemon at `socket_path` that passed `fds` and carries
// one run session (proto/run_wire.h) instead of gRPC. Errors as above.
absl::StatusOr<UniqueFd> ConnectRunSession(const std::string& socket_path, std::span<const int> fds,
                                           absl::Duration timeout = kConnectTimeout);

}  // namespace berth::client
