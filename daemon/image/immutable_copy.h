// The node's store of daemon-owned, immutable copies of image partitions.
//
// A user can rewrite a file they own while the kernel reads it through a loop
// device, feeding the squashfs driver crafted bytes after every check (the
// CVE-2023-30549 class, security.md B3.3). So partitions the daemon does not
// trust are first copied here, into <state>/images (root, 0700), as
// read-only (0400) files named by the SHA-256 of their content, computed
// while copying. The kernel then reads only the copy, which no user can
// reach. Naming by content means two users with the same image share one
// copy (and one mount), and a copy survives the mount for the next run.
//
// The store has a size budget (berth.conf copy_store_max_mib), counted in
// allocated bytes (st_blocks; copies are sparse, sparse_copy.h): every user
// can make the daemon copy images into root's state directory, so without
// one a single user could fill that filesystem. Before a copy, the least
// recently used copies no loop device reads are deleted until the new one
// fits; when held copies alone leave no room, the copy is refused with a
// message naming the setting. A copy a loop device reads is never deleted,
// and one whose name is gone while a loop device still reads it (pinned
// through /proc/PID/root after its mount ended) still counts: what the
// kernel holds is what fills the disk (loop_ledger.h).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"

namespace berth::daemon::image {

// A file a loop device reads (a live mount, or one pinned after its unmount).
struct HeldFile {
  dev_t dev = 0;
  ino_t ino = 0;
  int64_t bytes = 0;  // allocated
  std::string path;   // where it was when the loop device was attached
};
using HeldFiles = std::function<std::vector<HeldFile>()>;

struct StoreOptions {
  int64_t max_bytes = 0;  // the budget (0: none)
  HeldFiles held;         // files loop devices read now (none when unset)
  // Called with the digest of each copy the budget deleted (outside locks).
  std::function<void(const std::string& digest)> on_delete;
};

class ImageStore {
 public:
  struct Copy {
    std::string digest;      // lower-case hex SHA-256 of the partition
    UniqueFd fd;             // the stored copy, read-only
    bool reused = false;     // an identical copy was already stored
    bool reflinked = false;  // the bytes were shared with FICLONERANGE
  };

  using Options = StoreOptions;

  // Opens the store at `dir`, creating it 0700 if missing; refuses a
  // directory that is a symlink, not ours, or writable by group/other.
  // Removes temporary files left by an interrupted copy.
  static absl::StatusOr<ImageStore> Open(const std::string& dir, Options options = {});

  // Copies bytes [offset, offset+size) of `source_fd` into the store and
  // hashes them on the way: reflink (FICLONERANGE) where the filesystem
  // allows it (then the copy is hashed), otherwise one read/hash/write pass
  // over the data extents (holes stay holes). The copy is created
  // O_EXCL|O_NOFOLLOW under a temporary name, fsynced, made 0400 and renamed
  // into place without replacing an existing copy. Room is made first (see
  // above); with `may_evict` false no other copy is deleted for it, and a
  // copy that does not fit as things are is refused (ResourceExhausted).
  // A range longer than the whole budget is refused: its holes would still
  // cost a hash pass. Privilege: writes into the daemon's state directory.
  absl::StatusOr<Copy> CopyPartition(int source_fd, int64_t offset, int64_t size,
                                     bool may_evict = true);

  // The stored copy named `digest` (NotFound when there is none); marks it
  // recently used.
  absl::StatusOr<UniqueFd> OpenCopy(const std::string& digest) const;

  // Deletes the copy named `digest` (one the kernel refused, say).
  void Remove(const std::string& digest);

  // Deletes every stored copy no loop device reads; returns how many.
  int Prune();

  const std::string& dir() const { return dir_; }

 private:
  // Copies being written count against the budget before they are listed.
  struct Budget {
    absl::Mutex mu;
    int64_t reserved ABSL_GUARDED_BY(mu) = 0;
  };
  class Reservation;

  absl::StatusOr<Reservation> MakeRoom(int64_t apparent, int64_t bytes, bool may_evict);
  std::vector<std::string> EvictFor(int64_t bytes, int64_t& used, bool may_evict);

  UniqueFd dir_fd_;
  std::string dir_;
  Options options_;
  std::unique_ptr<Budget> budget_ = std::make_unique<Budget>();
};

// Whether `digest` is a well-formed lower-case hex SHA-256 (and so a safe
// file name).
bool IsSha256Hex(const std::string& digest);

// Opens (creating with `mode` if missing) a directory the daemon owns, and
// checks it is a real directory, owned by the daemon's euid, and not writable
// by group or other (CVE-2019-11328: state must never be user-controlled).
absl::StatusOr<UniqueFd> OpenPrivateDirectory(const std::string& path, mode_t mode);

}  // namespace berth::daemon::image
