#include "daemon/server/connection_budget.h"

#include <utility>

#include "absl/strings/str_format.h"

namespace berth::daemon {

Charge::Charge(Charge&& other) noexcept
    : budget_(std::exchange(other.budget_, nullptr)),
      uid_(other.uid_),
      what_(other.what_),
      n_(std::exchange(other.n_, 0)) {}

Charge& Charge::operator=(Charge&& other) noexcept {
  if (this != &other) {
    Return();
    budget_ = std::exchange(other.budget_, nullptr);
    uid_ = other.uid_;
    what_ = other.what_;
    n_ = std::exchange(other.n_, 0);
  }
  return *this;
}

void Charge::Return() {
  if (budget_ != nullptr && n_ > 0) budget_->Give(uid_, what_, n_);
  budget_ = nullptr;
  n_ = 0;
}

absl::StatusOr<Charge> ConnectionBudget::Take(uid_t uid, Held what, size_t n) {
  size_t limit =
      what == Held::kConnections ? limits_.connections_per_user : limits_.handed_fds_per_user;
  absl::MutexLock lock(&mu_);
  size_t& held = held_[uid].Of(what);
  if (held + n > limit) {
    size_t now = held;
    if (held_[uid].connections == 0 && held_[uid].handed_fds == 0) held_.erase(uid);
    if (what == Held::kConnections) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("user %d already has %d connections open to berthd "
                          "(max_connections_per_user in berth.conf)",
                          uid, now));
    }
    return absl::ResourceExhaustedError(
        absl::StrFormat("user %d already has %d descriptors handed to berthd and passed %d more "
                        "(max_handed_fds_per_user in berth.conf)",
                        uid, now, n));
  }
  held += n;
  return Charge(this, uid, what, n);
}

void ConnectionBudget::Give(uid_t uid, Held what, size_t n) {
  absl::MutexLock lock(&mu_);
  auto it = held_.find(uid);
  if (it == held_.end()) return;
  size_t& held = it->second.Of(what);
  held = held > n ? held - n : 0;
  if (it->second.connections == 0 && it->second.handed_fds == 0) held_.erase(it);
}

size_t ConnectionBudget::HeldBy(uid_t uid, Held what) const {
  absl::MutexLock lock(&mu_);
  auto it = held_.find(uid);
  if (it == held_.end()) return 0;
  return what == Held::kConnections ? it->second.connections : it->second.handed_fds;
}

std::optional<uid_t> ConnectionBudget::Heaviest() const {
  absl::MutexLock lock(&mu_);
  std::optional<uid_t> heaviest;
  size_t most = 0;
  for (const auto& [uid, counts] : held_) {
    if (counts.connections + counts.handed_fds > most) {
      most = counts.connections + counts.handed_fds;
      heaviest = uid;
    }
  }
  return heaviest;
}

}  // namespace berth::daemon
