#include "daemon/server/peer_registry.h"

#include <sys/stat.h>

#include <cerrno>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_io.h"

namespace berth::daemon {
namespace {

constexpr absl::string_view kFdPeerPrefix = "fd:";
// How long handed descriptors may wait for the call that takes them.
constexpr auto kUnclaimedFdsLifetime = std::chrono::seconds(10);

// The socket currently at descriptor `fd`, if `fd` is open.
std::optional<struct stat> StatDescriptor(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return std::nullopt;
  return st;
}

bool SameSocket(const struct stat& st, dev_t dev, ino_t ino) {
  return S_ISSOCK(st.st_mode) && st.st_dev == dev && st.st_ino == ino;
}

}  // namespace

absl::Status PeerRegistry::Register(int fd, PeerIdentity peer) {
  auto st = StatDescriptor(fd);
  if (!st) return ErrnoStatus("fstat of the accepted connection", errno);
  auto shared = std::make_shared<const PeerIdentity>(std::move(peer));
  absl::MutexLock lock(&mu_);
  entries_.insert_or_assign(
      fd, Entry{st->st_dev, st->st_ino, std::move(shared), std::chrono::steady_clock::now()});
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const PeerIdentity>> PeerRegistry::IdentifyCall(
    absl::string_view grpc_peer) const {
  int fd = -1;
  absl::string_view number = grpc_peer;
  if (!absl::ConsumePrefix(&number, kFdPeerPrefix) || !absl::SimpleAtoi(number, &fd)) {
    return absl::UnauthenticatedError(
        absl::StrCat("connection '", grpc_peer, "' did not come through berthd's accept loop"));
  }
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(fd);
  auto st = StatDescriptor(fd);
  if (it == entries_.end() || !st || !SameSocket(*st, it->second.dev, it->second.ino)) {
    return absl::UnauthenticatedError(
        absl::StrCat("no caller identity for connection fd:", fd, " (closed or replaced)"));
  }
  return it->second.peer;
}

void PeerRegistry::SweepClosed() {
  auto stale = std::chrono::steady_clock::now() - kUnclaimedFdsLifetime;
  absl::MutexLock lock(&mu_);
  absl::erase_if(entries_, [stale](const auto& kv) {
    auto st = StatDescriptor(kv.first);
    if (!st || !SameSocket(*st, kv.second.dev, kv.second.ino)) return true;
    if (kv.second.registered < stale) kv.second.peer->handed_fds->Drop();
    return false;
  });
}

void PeerRegistry::DropUnclaimedOf(uid_t uid) {
  absl::MutexLock lock(&mu_);
  for (auto& [fd, entry] : entries_) {
    if (entry.peer->uid == uid) entry.peer->handed_fds->Drop();
  }
}

size_t PeerRegistry::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace berth::daemon
