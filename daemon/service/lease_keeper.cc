#include "daemon/service/lease_keeper.h"

#include <vector>

namespace berth::daemon {

LeaseKeeper::LeaseKeeper(absl::Duration linger) : linger_(linger) {
  if (linger_ > absl::ZeroDuration()) expirer_ = std::thread(&LeaseKeeper::ExpireLoop, this);
}

LeaseKeeper::~LeaseKeeper() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (expirer_.joinable()) expirer_.join();
}

void LeaseKeeper::Keep(std::shared_ptr<image::MountLease> lease) {
  if (linger_ <= absl::ZeroDuration() || lease == nullptr) return;
  std::string root = lease->root();
  absl::MutexLock lock(&mu_);
  held_[root] = Held{std::move(lease), absl::Now() + linger_};
}

void LeaseKeeper::ExpireLoop() {
  const absl::Duration tick = std::min(linger_ / 4, absl::Seconds(5));
  for (;;) {
    std::vector<std::shared_ptr<image::MountLease>> expired;  // released outside the lock
    {
      absl::MutexLock lock(&mu_);
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&stop), tick);
      if (stopping_) return;
      absl::Time now = absl::Now();
      for (auto it = held_.begin(); it != held_.end();) {
        if (it->second.until <= now) {
          expired.push_back(std::move(it->second.lease));
          it = held_.erase(it);
        } else {
          ++it;
        }
      }
    }
  }
}

}  // namespace berth::daemon
