// Leases, per-uid accounting and single-flight for the image cache.
#include "daemon/image/cache_state.h"

#include "absl/strings/str_format.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::image {

// Root (the admin, a Slurm prolog pre-staging images) is not limited.
bool Limited(uid_t uid) {
  return uid != 0;
}

CacheEntry::~CacheEntry() {
  mounted.reset();  // unmount first: the loop device is in use until then
  std::shared_ptr<CacheState> s = state.lock();
  if (!s) return;
  if (loop_ticket != 0) s->loops->Release(loop_ticket);
  absl::MutexLock lock(&s->mu);
  --s->stats.live_mounts;
  if (auto it = s->live.find(key); it != s->live.end() && it->second.expired()) {
    s->live.erase(it);
  }
}

EntryOrError SingleFlight(CacheState& state, const std::string& key,
                          const std::function<std::shared_ptr<CacheEntry>()>& lookup,
                          const std::function<EntryOrError()>& make) {
  std::shared_ptr<Flight> flight;
  bool leader = false;
  {
    absl::MutexLock lock(&state.mu);
    if (std::shared_ptr<CacheEntry> entry = lookup()) return entry;
    std::shared_ptr<Flight>& slot = state.flights[key];
    if (slot == nullptr) {
      slot = std::make_shared<Flight>();
      leader = true;
    }
    flight = slot;
  }
  if (!leader) {
    flight->done.WaitForNotification();
    return flight->result;
  }
  EntryOrError result = make();
  {
    absl::MutexLock lock(&state.mu);
    state.flights.erase(key);
  }
  flight->result = result;
  flight->done.Notify();
  return result;
}

static absl::Status ImageLimitError(uid_t uid, size_t held) {
  return absl::ResourceExhaustedError(absl::StrFormat(
      "user %d already has %d images mounted (limit max_images_per_user in berth.conf)", uid,
      held));
}

absl::Status PrecheckImageLimit(CacheState& state, const std::string& file_key, uid_t uid) {
  absl::MutexLock lock(&state.mu);
  auto usage = state.usage.find(uid);
  if (!Limited(uid) || usage == state.usage.end()) return absl::OkStatus();
  const size_t held = usage->second.leases_by_key.size();
  if (held < static_cast<size_t>(state.policy.max_images_per_uid)) return absl::OkStatus();
  auto known = state.known.find(file_key);
  if (known != state.known.end() && usage->second.leases_by_key.contains(known->second.mount_key)) {
    return absl::OkStatus();
  }
  return ImageLimitError(uid, held);
}

absl::StatusOr<std::shared_ptr<MountLease>> NewLease(std::shared_ptr<CacheState> state,
                                                     std::shared_ptr<CacheEntry> entry, uid_t uid) {
  {
    absl::MutexLock lock(&state->mu);
    UserUsage& usage = state->usage[uid];
    const size_t held = usage.leases_by_key.size();
    if (Limited(uid) && !usage.leases_by_key.contains(entry->key) &&
        held >= static_cast<size_t>(state->policy.max_images_per_uid)) {
      if (held == 0) state->usage.erase(uid);
      return ImageLimitError(uid, held);
    }
    ++usage.leases_by_key[entry->key];
  }
  return std::shared_ptr<MountLease>(new MountLease(std::move(entry), std::move(state), uid));
}

MountLease::MountLease(std::shared_ptr<CacheEntry> entry, std::shared_ptr<CacheState> state,
                       uid_t uid)
    : state_(std::move(state)), entry_(std::move(entry)), uid_(uid) {}

MountLease::~MountLease() {
  {
    absl::MutexLock lock(&state_->mu);
    auto usage = state_->usage.find(uid_);
    if (usage != state_->usage.end()) {
      auto held = usage->second.leases_by_key.find(entry_->key);
      if (held != usage->second.leases_by_key.end() && --held->second == 0) {
        usage->second.leases_by_key.erase(held);
      }
      if (usage->second.leases_by_key.empty()) state_->usage.erase(usage);
    }
  }
  // The daemon's own hold (idle_unmount_seconds) and this one: the last
  // container of the image is ending. A racing end may skip this; the
  // unmount frees everything anyway.
  if (entry_.use_count() == 2 && entry_->mounted) entry_->mounted->Trim();
  // Outside the lock: the last lease's entry unmounts, which takes it again.
  entry_.reset();
}

const std::string& MountLease::root() const {
  return entry_->mounted ? entry_->mounted->root() : entry_->directory.path();
}
const std::string& MountLease::digest() const {
  return entry_->digest;
}
MountBackend MountLease::backend() const {
  return entry_->mounted ? entry_->mounted->backend() : MountBackend::kDirectory;
}

}  // namespace berth::daemon::image
