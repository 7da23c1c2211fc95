// The namespaces a user-mode berthd lives in.
//
// A user-mode daemon runs as an ordinary user, yet has to mount images (FUSE)
// and, later, build containers. At start-up, before any thread exists, it
// moves into a new user namespace that maps only its own uid and gid onto
// themselves, plus a new mount namespace owned by it. There it holds
// CAP_SYS_ADMIN over its own mounts (FUSE is mountable in user namespaces),
// while files keep their real owners and nothing it mounts is visible to, or
// can disturb, the host.
#pragma once

#include "absl/status/status.h"

namespace berth::daemon::image {

// unshare(CLONE_NEWUSER | CLONE_NEWNS); uid_map "U U 1"; setgroups "deny";
// gid_map "G G 1"; then / and everything below becomes a slave mount (host
// mounts still appear here, ours never leak out).
// Must run while the process is single-threaded (the kernel refuses
// CLONE_NEWUSER otherwise): call it from main() before gRPC or spdlog's
// async sinks start threads.
// Privilege: none; needs unprivileged user namespaces enabled on the node.
absl::Status EnterUserModeNamespaces();

}  // namespace berth::daemon::image
