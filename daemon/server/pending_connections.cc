#include "daemon/server/pending_connections.h"

#include <algorithm>
#include <utility>

#include "daemon/server/refusal_log.h"

namespace berth::daemon {

void PendingConnections::Add(PendingConnection p) {
  uid_t uid = p.peer.uid;
  if (HeldBy(uid) >= per_user_) {
    DropAt(OldestOf(uid), "the user's oldest connections without a preamble make room");
  } else if (list_.size() >= total_) {
    DropAt(OldestOfHeaviest(), "berthd holds too many connections without a preamble");
  }
  ++per_uid_[uid];
  list_.push_back(std::move(p));
}

void PendingConnections::AppendPollFds(std::vector<pollfd>& fds) const {
  for (const PendingConnection& p : list_) fds.push_back({p.conn.get(), POLLIN, 0});
}

void PendingConnections::Service(std::span<const pollfd> polled,
                                 const std::function<bool(PendingConnection&)>& complete) {
  auto now = std::chrono::steady_clock::now();
  std::deque<PendingConnection> kept;
  for (size_t i = 0; i < list_.size(); ++i) {
    PendingConnection& p = list_[i];
    bool ready = i < polled.size() && polled[i].revents != 0;
    bool finished = ready && complete(p);
    if (!finished && now >= p.deadline) {
      AcceptLoopRefusals().Warn(p.peer, "dropping a connection", "no preamble in time");
      finished = true;
    }
    if (!finished) {
      kept.push_back(std::move(p));
      continue;
    }
    auto it = per_uid_.find(p.peer.uid);
    if (it != per_uid_.end() && --it->second == 0) per_uid_.erase(it);
  }
  list_.swap(kept);
}

size_t PendingConnections::ShedUser(uid_t uid) {
  size_t before = list_.size();
  std::erase_if(list_, [uid](const PendingConnection& p) { return p.peer.uid == uid; });
  per_uid_.erase(uid);
  return before - list_.size();
}

int PendingConnections::MillisToNextDeadline(int cap) const {
  if (list_.empty()) return cap;
  auto next = list_.front().deadline;
  for (const auto& p : list_) next = std::min(next, p.deadline);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      next - std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count() + 1, 0, cap));
}

size_t PendingConnections::HeldBy(uid_t uid) const {
  auto it = per_uid_.find(uid);
  return it == per_uid_.end() ? 0 : it->second;
}

void PendingConnections::DropAt(size_t index, const char* why) {
  PendingConnection& p = list_[index];
  AcceptLoopRefusals().Warn(p.peer, "dropping a connection", why);
  auto it = per_uid_.find(p.peer.uid);
  if (it != per_uid_.end() && --it->second == 0) per_uid_.erase(it);
  list_.erase(list_.begin() + static_cast<std::ptrdiff_t>(index));
}

size_t PendingConnections::OldestOfHeaviest() const {
  uid_t heaviest = list_.front().peer.uid;
  size_t most = 0;
  for (const auto& [uid, n] : per_uid_) {
    if (n > most) {
      most = n;
      heaviest = uid;
    }
  }
  return OldestOf(heaviest);
}

size_t PendingConnections::OldestOf(uid_t uid) const {
  for (size_t i = 0; i < list_.size(); ++i) {
    if (list_[i].peer.uid == uid) return i;
  }
  return 0;
}

}  // namespace berth::daemon
