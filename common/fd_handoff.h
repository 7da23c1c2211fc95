// The first bytes on every client connection to berthd: a fixed 12-byte
// preamble carrying the client's descriptors (stdio, PMI_FD, --keep-fd) as
// SCM_RIGHTS and saying what the connection carries next: gRPC's HTTP/2, or
// one run session (proto/run_wire.h).
//
// gRPC cannot carry descriptors, and a container must receive the caller's
// real stdin/stdout/stderr (and Slurm's PMI socket) to behave as if the
// client had exec'd it: zero-copy output, EOF and back-pressure for free.
// Passing them once at connect, on the connection whose peer credentials the
// daemon reads, ties the descriptors to the authenticated caller.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace berth {

inline constexpr size_t kMaxHandoffFds = 64;

// What follows the preamble on the connection.
enum class ConnectionKind { kGrpc, kRunSession };

struct Handoff {
  ConnectionKind kind = ConnectionKind::kGrpc;
  std::vector<UniqueFd> fds;
  bool no_room = false;  // the descriptors were lost: our table is full
};

// Client side: sends the preamble with `fds` (may be empty). Blocking socket.
absl::Status SendHandoff(int sock, std::span<const int> fds,
                         ConnectionKind kind = ConnectionKind::kGrpc);

// Daemon side: reads exactly the preamble from a non-blocking socket.
// kUnavailable means "not there yet, poll and retry"; kCancelled, that the
// client closed without sending anything (a probe); anything else is a
// protocol violation. Either way the connection must be dropped. Received
// descriptors are close-on-exec. A handoff with `no_room` set says this
// process's descriptor table could not take the passed descriptors.
absl::StatusOr<Handoff> ReceiveHandoff(int sock);

// Daemon side: what the preamble waiting on `sock` announces, without
// reading it or receiving its descriptors (for a connection the daemon
// cannot take, to tell a run-session client why); nothing when no whole
// preamble is there.
std::optional<ConnectionKind> PeekConnectionKind(int sock);

// What a handed descriptor must let its holder do.
enum class HandedAccess { kAny, kRead, kWrite };

// What one position of the preamble is for: "the output file", "container
// descriptor 1", and the access the verb needs through it.
struct HandedItem {
  std::string what;
  HandedAccess need = HandedAccess::kAny;
};

// Daemon side: refuses a handed descriptor the daemon must not act through.
// An O_PATH descriptor needs no permission on its file, only the right to
// walk to it, so reading, writing or openat() below it with the daemon's
// rights would lend them to the caller; a descriptor not open for `need`
// would likewise be the daemon's access, not the caller's. The error is one
// line naming the item and the fix.
absl::Status CheckHandedDescriptor(int fd, const HandedItem& item);

}  // namespace berth
