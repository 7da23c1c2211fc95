#include "daemon/server/peer_identity.h"

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/file_io.h"
#include "common/status_macros.h"

// Debian 12's headers predate Linux 6.5.
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

namespace berth::daemon {
namespace {

absl::StatusOr<ucred> ReadPeerCred(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return ErrnoStatus("SO_PEERCRED", errno);
  }
  return cred;
}

absl::StatusOr<std::vector<gid_t>> ReadPeerGroups(int fd) {
  std::vector<gid_t> groups(32);
  for (;;) {
    auto len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
      groups.resize(len / sizeof(gid_t));
      return groups;
    }
    // On ERANGE the kernel has written the size it needs into `len`.
    if (errno != ERANGE) return ErrnoStatus("SO_PEERGROUPS", errno);
    groups.resize(len / sizeof(gid_t));
  }
}

// A pidfd for the peer, and whether the kernel vouches it is the process that
// connected (SO_PEERPIDFD) rather than whatever now has its pid.
absl::StatusOr<std::pair<UniqueFd, bool>> OpenPeerPidfd(int fd, pid_t pid) {
  int pidfd = -1;
  socklen_t len = sizeof(pidfd);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0) {
    return std::make_pair(UniqueFd(pidfd), true);
  }
  if (errno != ENOPROTOOPT) return ErrnoStatus("SO_PEERPIDFD (has the client exited?)", errno);
  // Not glibc's pidfd_open(): Debian 12's <sys/pidfd.h> lacks extern "C".
  pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return ErrnoStatus("pidfd_open of the peer (has the client exited?)", errno);
  return std::make_pair(UniqueFd(pidfd), false);
}

}  // namespace

absl::StatusOr<std::vector<UniqueFd>> HandedFds::Take(std::span<const HandedItem> items) {
  std::vector<UniqueFd> fds;
  {
    absl::MutexLock lock(&mu_);
    fds = std::exchange(fds_, {});
  }
  for (size_t i = 0; i < fds.size(); ++i) {
    HandedItem unnamed{absl::StrCat("handed descriptor #", i), HandedAccess::kAny};
    RETURN_IF_ERROR(CheckHandedDescriptor(fds[i].get(), i < items.size() ? items[i] : unnamed));
  }
  return fds;
}

absl::StatusOr<PeerIdentity> ReadPeerCredentials(int fd) {
  PeerIdentity peer;
  ASSIGN_OR_RETURN(ucred cred, ReadPeerCred(fd));
  peer.pid = cred.pid;
  peer.uid = cred.uid;
  peer.gid = cred.gid;
  return peer;
}

absl::Status CompletePeerIdentity(int fd, PeerIdentity& peer) {
  ASSIGN_OR_RETURN(peer.groups, ReadPeerGroups(fd));
  ASSIGN_OR_RETURN(auto pidfd, OpenPeerPidfd(fd, peer.pid));
  peer.pidfd = std::make_shared<UniqueFd>(std::move(pidfd.first));
  peer.pidfd_exact = pidfd.second;
  return absl::OkStatus();
}

std::string DescribePeer(const PeerIdentity& peer) {
  return absl::StrFormat("uid=%d gid=%d groups=%s pid=%d", peer.uid, peer.gid,
                         absl::StrJoin(peer.groups, ","), peer.pid);
}

}  // namespace berth::daemon
