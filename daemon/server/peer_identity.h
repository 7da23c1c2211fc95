// Who is on the other end of an accepted Unix-socket connection, as the
// kernel says.
//
// This is the daemon's only source of caller identity: requests never carry
// a uid. Everything is read from the socket with getsockopt, and all of it
// describes the peer at connect() time:
//   - SO_PEERCRED   pid, uid, gid;
//   - SO_PEERGROUPS the supplementary groups. Captured by the kernel with the
//     uid/gid in one snapshot, so there is no need to read /proc/<pid>/status
//     (which would describe the process *now*, racing with setgroups() and
//     with pid reuse);
//   - SO_PEERPIDFD  (Linux >= 6.5) a pidfd for the very process that
//     connected. On older kernels we fall back to pidfd_open(pid), which can
//     pin a different process if the peer exited and its pid was reused
//     before accept(); `pidfd_exact` records which one we got so that code
//     acting on the process (cgroup joins, signals) can refuse the fallback.
//
// Privilege: none needed; runs in the accept loop as the daemon's user.
#pragma once

#include <sys/types.h>

#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/fd_handoff.h"
#include "common/unique_fd.h"
#include "daemon/server/connection_budget.h"

namespace berth::daemon {

// Descriptors the client passed in its connection preamble (fd_handoff.h):
// its stdio, Slurm's PMI_FD and --keep-fd for a run; the output file and a
// local image for a pull; the image for a push. The first verb on the
// connection takes them, each checked against what that verb does through
// it (CheckHandedDescriptor: never an O_PATH descriptor, open for the access
// needed), so the daemon never acts through a descriptor with rights the
// caller did not open it with. Their share of the caller's budget
// (connection_budget.h) is held until the request that took them says it has
// closed them (Done), until they are dropped unclaimed, or until this object
// goes.
class HandedFds {
 public:
  explicit HandedFds(std::vector<UniqueFd> fds, Charge charge = {})
      : fds_(std::move(fds)), charge_(std::move(charge)) {}
  // All of them the first time, nothing afterwards. Position i is checked
  // against items[i], positions past `items` as "handed descriptor #i" (any
  // access); on a refusal nothing is handed out.
  absl::StatusOr<std::vector<UniqueFd>> Take(std::span<const HandedItem> items);
  // The taken descriptors are closed: their share goes back to the budget.
  void Done() {
    absl::MutexLock lock(&mu_);
    charge_.Return();
  }
  // Closes them and gives their share back, if nobody took them.
  void Drop() {
    absl::MutexLock lock(&mu_);
    if (fds_.empty()) return;
    fds_.clear();
    charge_.Return();
  }

 private:
  absl::Mutex mu_;
  std::vector<UniqueFd> fds_ ABSL_GUARDED_BY(mu_);
  Charge charge_ ABSL_GUARDED_BY(mu_);
};

struct PeerIdentity {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  // Shared so that a call keeps the process pinned even after its connection
  // entry is dropped.
  std::shared_ptr<UniqueFd> pidfd;
  bool pidfd_exact = false;
  std::shared_ptr<HandedFds> handed_fds = std::make_shared<HandedFds>(std::vector<UniqueFd>{});
  // The connection's share of the caller's budget: returned when the last
  // holder of this identity (the registry entry, a call, a run session) lets
  // it go.
  std::shared_ptr<Charge> connection;
};

// Reads the identity of the peer of the connected Unix socket `fd` in two
// steps: the uid, gid and pid only (one getsockopt, enough to charge a
// connection to its user), then the groups and the pidfd. The kernel
// recorded all of it at connect(), so the second step may come later and
// only for connections the daemon keeps.
absl::StatusOr<PeerIdentity> ReadPeerCredentials(int fd);
absl::Status CompletePeerIdentity(int fd, PeerIdentity& peer);

// "uid=U gid=G groups=G1,G2 pid=P", for logs.
std::string DescribePeer(const PeerIdentity& peer);

}  // namespace berth::daemon
