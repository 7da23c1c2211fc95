// How the client finds and reaches berthd.
//
// The socket is, in order: the global `--socket PATH` option, the
// BERTH_SOCKET environment variable, then the node daemon's
// /run/berth/berthd.sock. User mode will extend this list rather than change
// it: when no system daemon answers, a later step falls back to a private
// daemon under $XDG_RUNTIME_DIR/berth/, starting one if needed, and this file
// is where that fallback goes, so verbs keep calling ConnectToDaemon() only.
//
// The client connects the socket itself (gRPC then runs over that one
// connection), so every verb fails the same way, at once, with the reason the
// kernel gave ("No such file or directory", "Connection refused", "Permission
// denied"), instead of each RPC reporting gRPC's own wording after a timeout.
#pragma once

#include <grpcpp/channel.h>

#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace berth::client {

inline constexpr absl::Duration kConnectTimeout = absl::Seconds(2);

// The socket to use given the `--socket` value (empty when not given).
std::string ResolveSocketPath(const std::string& socket_flag);

// A channel to the daemon at `socket_path`, over one connection that first
// passes `fds` (fd_handoff.h) — the descriptors a Run places into the
// container. On failure the status message is the whole user-facing line:
// "cannot reach berthd at PATH: ...".
absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectToDaemon(
    const std::string& socket_path, std::span<const int> fds = {},
    absl::Duration timeout = kConnectTimeout);

}  // namespace berth::client
