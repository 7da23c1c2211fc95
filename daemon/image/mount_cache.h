// The node's image cache: every container of the same image on this node
// shares one read-only mount of its squashfs root filesystem.
//
// A container start asks Acquire() for the image the caller opened; it gets a
// lease on a mounted root directory and holds it for the container's life.
// The first lease validates the SIF, picks its primary squashfs partition
// and mounts it; later ones (64 ranks starting at once included) share that
// mount, and a repeat run of an unchanged file is a hash-map hit keyed by the
// file's identity (device, inode, size, ctime and mtime in ns): no re-hash,
// no re-mount. When the last lease dies the image is unmounted and its loop
// device freed.
//
// How a partition is mounted (berth.conf `kernel squashfs`):
//   - system mode, kTrusted (default): files no user can modify (image_trust.h)
//     are loop-mounted in place; any other file is first copied into the
//     daemon's content-addressed store (immutable_copy.h) and the copy is
//     mounted, so the kernel never parses bytes a user can change under it.
//     Mounts of immutable bytes are shared by content: two users with the
//     same image share one copy and one mount.
//   - kAlways: every file is loop-mounted in place (sites that accept the risk).
//   - kNever, and user mode: the in-process FUSE server (fuse_squashfs.h) on
//     the caller's file; such mounts are shared only by the same file.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "daemon/daemon_options.h"
#include "daemon/image/immutable_copy.h"
#include "daemon/image/mounted_image.h"

namespace berth::daemon::image {

struct ImagePolicy {
  enum class KernelSquashfs {
    kAlways,
    kTrusted,
    kNever
  } kernel_squashfs = KernelSquashfs::kTrusted;
  int max_loop_devices_per_uid = 16;  // loop devices whose mount a uid caused
  int max_images_per_uid = 32;        // distinct images a uid holds leases on
  int fuse_threads = 8;               // FUSE worker threads (and readers) per mount
  int64_t copy_store_max_bytes = 0;   // budget of the immutable-copy store; 0: none
  // Store copies a uid's loop devices read; 0: none. Never more than half
  // of copy_store_max_bytes (UserShareOf).
  int64_t store_max_bytes_per_uid = 0;
};

struct MountCacheStats {
  int64_t mounts = 0;         // mounts made
  int64_t identity_hits = 0;  // Acquire answered from the identity map
  int64_t hashes = 0;         // partitions hashed in place
  int64_t copies = 0;         // partitions copied into the store
  int64_t reused_copies = 0;  // ... of which the store already had the bytes
  int64_t live_mounts = 0;    // mounts alive now
};

struct CacheState;  // mount_cache.cc
struct CacheEntry;  // mount_cache.cc

// A container's hold on a mounted image. Thread-safe to destroy anywhere;
// may outlive the MountCache.
class MountLease {
 public:
  ~MountLease();
  MountLease(const MountLease&) = delete;
  MountLease& operator=(const MountLease&) = delete;

  // Directory where the image's root filesystem is mounted (read-only,
  // nosuid, nodev), under <state_dir>/mounts.
  const std::string& root() const;
  // Lower-case hex SHA-256 of the squashfs partition; for a sandbox,
  // "dir:<device>:<inode>" of its directory.
  const std::string& digest() const;
  MountBackend backend() const;
  uid_t uid() const { return uid_; }

 private:
  friend class MountCache;
  MountLease(std::shared_ptr<CacheEntry> entry, std::shared_ptr<CacheState> state, uid_t uid);
  friend absl::StatusOr<std::shared_ptr<MountLease>> NewLease(std::shared_ptr<CacheState>,
                                                              std::shared_ptr<CacheEntry>, uid_t);
  std::shared_ptr<CacheState> state_;  // declared first: outlives entry_
  std::shared_ptr<CacheEntry> entry_;
  uid_t uid_;
};

class MountCache {  // one per daemon, thread-safe
 public:
  MountCache(std::string state_dir, DaemonMode mode, ImagePolicy policy);
  ~MountCache();

  // Creates <state_dir>/{mounts,images} (0700, owned by the daemon), detaches
  // mounts a crashed daemon left under <state_dir>/mounts and removes
  // half-written copies. Call once at daemon start; Acquire calls it if not.
  // Privilege: root in system mode (unmounts).
  absl::Status Init();

  // `image_fd` was opened by OpenAsCaller for `caller`. Validates the SIF,
  // picks the primary squashfs partition (or, with `partition_id`, the
  // squashfs partition of that descriptor id: a bind's id=), and returns a
  // lease on a read-only mount of it shared by every container of the same
  // image on the node.
  // Errors read "mounting image <display_path>: <problem>".
  // Privilege: root in system mode (loop devices, mounts, the image store).
  absl::StatusOr<std::shared_ptr<MountLease>> Acquire(UniqueFd image_fd,
                                                      const std::string& display_path, uid_t caller,
                                                      uint32_t partition_id = 0);

  // `dir_fd` is a sandbox directory the caller opened for reading
  // (CheckReadableDirectory refuses anything else, O_PATH included). Returns
  // a lease on a fresh bind of exactly that directory (directory_mount.h),
  // never shared: a user can change a directory at any time, so there is no
  // identity to share it by. Errors read "mounting sandbox <display_path>: ...".
  // Privilege: as Acquire.
  // `writable` (--writable) binds it read-write.
  absl::StatusOr<std::shared_ptr<MountLease>> AcquireDirectory(UniqueFd dir_fd,
                                                               const std::string& display_path,
                                                               uid_t caller, bool writable = false);

  // Another lease on `lease`'s mount, held by the daemon itself: it keeps the
  // image mounted (e.g. warm for the next start after the last container)
  // without counting against the user's image limit. The loop device stays
  // charged to the user whose request mounted it until the unmount.
  std::shared_ptr<MountLease> HoldForDaemon(const MountLease& lease);

  // Deletes stored copies no loop device reads; returns how many (for an
  // epilog or a periodic job: copies otherwise stay as a node cache).
  absl::StatusOr<int> PruneCopies();

  // The files loop devices read now, pinned ones included: the ECL's store
  // keeps and counts them too (loop_ledger.h).
  std::vector<HeldFile> HeldFiles();
  // Whether `uid` may have `bytes` more copied into a store for a new mount
  // (loop devices and their share of the stores, loop_ledger.h); the ECL
  // asks before it copies.
  absl::Status CheckNewCopy(uid_t uid, int64_t bytes);

  MountCacheStats stats() const;
  std::string mounts_dir() const;
  std::string images_dir() const;

 private:
  std::shared_ptr<CacheState> state_;
};

}  // namespace berth::daemon::image
