// Internal state of the image cache (mount_cache.h), shared by the cache, its
// leases and its entries so that a lease may outlive the MountCache object.
// Not for use outside daemon/image/.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "daemon/daemon_options.h"
#include "daemon/image/immutable_copy.h"
#include "daemon/image/loop_ledger.h"
#include "daemon/image/mount_cache.h"
#include "daemon/image/mounted_image.h"
#include "daemon/image/scoped_mount.h"
#include "daemon/image/sif_partition.h"

namespace berth::daemon::image {

// One live mount, shared by leases. The last reference unmounts it.
struct CacheEntry {
  ~CacheEntry();

  std::unique_ptr<MountedImage> mounted;  // a squashfs; or else:
  ScopedMount directory;                  // a sandbox's bind (directory_mount.h)
  std::string digest;
  std::string key;           // in CacheState::live
  uint64_t loop_ticket = 0;  // its loop device on CacheState::loops (0: none)
  std::weak_ptr<CacheState> state;
};

// What we learned about a file the first time, so an unchanged file is never
// parsed, hashed or copied again.
struct KnownFile {
  std::string digest;
  std::string mount_key;
  SquashfsPartition partition;  // in the file; a copy starts at 0
  MountBackend backend = MountBackend::kKernelDirect;
};

// One in-progress mount that concurrent callers wait for (single flight).
struct Flight {
  absl::Notification done;
  absl::StatusOr<std::shared_ptr<CacheEntry>> result = absl::UnknownError("in flight");
};

struct UserUsage {
  absl::flat_hash_map<std::string, int> leases_by_key;  // images held
};

struct CacheState {
  std::string state_dir;
  std::string mounts_dir;
  std::string images_dir;
  DaemonMode mode = DaemonMode::kSystem;
  ImagePolicy policy;

  // Loop devices by user, until the kernel detaches them. Before the store:
  // the store asks it which copies loop devices read.
  std::unique_ptr<LoopLedger> loops;

  absl::Mutex init_mu;
  bool initialized ABSL_GUARDED_BY(init_mu) = false;
  std::optional<ImageStore> store;  // written once under init_mu, then read-only

  absl::Mutex mu;
  absl::flat_hash_map<std::string, KnownFile> known ABSL_GUARDED_BY(mu);  // by file key
  absl::flat_hash_map<std::string, std::weak_ptr<CacheEntry>> live ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, std::shared_ptr<Flight>> flights ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<uid_t, UserUsage> usage ABSL_GUARDED_BY(mu);
  MountCacheStats stats ABSL_GUARDED_BY(mu);
  uint64_t next_mount_number ABSL_GUARDED_BY(mu) = 0;
};

using EntryOrError = absl::StatusOr<std::shared_ptr<CacheEntry>>;

// Returns `lookup()` (run under state.mu) when it finds an entry; otherwise
// runs `make()` once for all concurrent callers with the same `key`, and
// hands every caller its result.
EntryOrError SingleFlight(CacheState& state, const std::string& key,
                          const std::function<std::shared_ptr<CacheEntry>()>& lookup,
                          const std::function<EntryOrError()>& make);

// Accounting of per-uid limits (root is exempt).
bool Limited(uid_t uid);
absl::StatusOr<std::shared_ptr<MountLease>> NewLease(std::shared_ptr<CacheState> state,
                                                     std::shared_ptr<CacheEntry> entry, uid_t uid);
// Fails early (before any hashing or copying) when `uid` is at its image
// limit and does not already hold the image known as `file_key`.
absl::Status PrecheckImageLimit(CacheState& state, const std::string& file_key, uid_t uid);

}  // namespace berth::daemon::image
