// Internals shared by fuse_squashfs.cc (mount, session, threads) and
// fuse_squashfs_ops.cc (the request handlers): the pool of libsquashfuse
// readers and the server state. Not for use outside daemon/image/.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <atomic>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/unique_fd.h"
#include "daemon/image/fuse_squashfs.h"
#include "daemon/image/scoped_mount.h"

// libsquashfuse's config.h (pulled in by its headers) defines
// _POSIX_C_SOURCE and FUSE_USE_VERSION 32 unconditionally; the first would
// clash with glibc's, and we want libfuse's 3.12 loop API.
#undef _POSIX_C_SOURCE
extern "C" {
#include "squashfuse.h"
// Exported by libsquashfuse_ll, but its stat.h is not installed.
sqfs_err sqfs_stat(sqfs* fs, sqfs_inode* inode, struct stat* st);
int sqfs_statfs(sqfs* fs, struct statvfs* st);                             // returns an errno value
int sqfs_listxattr(sqfs* fs, sqfs_inode* inode, char* buf, size_t* size);  // errno value
}
#undef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#include <fuse3/fuse_lowlevel.h>

namespace berth::daemon::image {

// Lends whole `sqfs` readers to request threads, one at a time each, since
// a reader's caches are not thread-safe. Grows on demand up to `max`.
class SqfsPool {
 public:
  SqfsPool(int fd, int64_t offset, int max) : fd_(fd), offset_(offset), max_(max) {}
  ~SqfsPool();

  // Opens the first reader, so a squashfs libsquashfuse cannot read is an
  // error at mount time rather than EIO later.
  absl::Status Init();

  class Lease {
   public:
    Lease(SqfsPool* pool, sqfs* fs) : pool_(pool), fs_(fs) {}
    ~Lease() { pool_->Return(fs_); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    sqfs* get() const { return fs_; }

   private:
    SqfsPool* pool_;
    sqfs* fs_;
  };
  Lease Borrow();
  // Frees the idle readers beyond the first (and their caches).
  void ShrinkIdle();
  int created() const;
  uint32_t block_size() const;

 private:
  absl::StatusOr<sqfs*> OpenReader();
  void Return(sqfs* fs);

  const int fd_;
  const int64_t offset_;
  const int max_;
  mutable absl::Mutex mu_;
  std::vector<sqfs*> idle_ ABSL_GUARDED_BY(mu_);
  std::vector<sqfs*> all_ ABSL_GUARDED_BY(mu_);
  int opening_ ABSL_GUARDED_BY(mu_) = 0;
};

// Decompressed data and fragment blocks, shared by all readers (LRU).
class SharedBlockCache {
 public:
  using Block = std::shared_ptr<sqfs_block>;
  explicit SharedBlockCache(size_t capacity);
  // The block at `pos` (raw on-disk `header`), decompressed with `fs` on a miss.
  absl::StatusOr<Block> Get(sqfs* fs, sqfs_off_t pos, uint32_t header);
  std::pair<uint64_t, uint64_t> HitsAndMisses() const;
  // Drops every cached block (readers holding one keep it until done).
  void Clear();

 private:
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::list<std::pair<sqfs_off_t, Block>> lru_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<sqfs_off_t, std::list<std::pair<sqfs_off_t, Block>>::iterator> index_
      ABSL_GUARDED_BY(mu_);
  uint64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
};

// sqfs_read_range through the shared cache: up to `size` bytes at `start`
// into `buf`; `*got` is 0 at end of file. False on a corrupt image.
bool ReadFileRange(sqfs* fs, SharedBlockCache& cache, sqfs_inode* inode, sqfs_off_t start,
                   size_t size, char* buf, size_t* got);

struct FuseSquashfsMount::Server {
  Server(UniqueFd fd, int64_t offset, int max_threads)
      : image_fd(std::move(fd)), pool(image_fd.get(), offset, max_threads) {}
  ~Server();

  UniqueFd image_fd;
  SqfsPool pool;
  std::unique_ptr<SharedBlockCache> blocks;  // sized once the block size is known
  std::string mount_path;
  fuse_session* session = nullptr;
  ScopedMount mount;
  std::thread loop;
  absl::Notification loop_done;
  // Negotiated at FUSE_INIT: the kernel opens files (directories) without
  // asking us, and keeps their page cache (directory cache) across opens.
  // Set before the first request is served, read-only afterwards.
  bool no_open = false;
  bool no_opendir = false;
  std::atomic<uint64_t> lookups{0};
  std::atomic<uint64_t> opens{0};
  std::atomic<uint64_t> opendirs{0};
  std::atomic<uint64_t> reads{0};
};

// The low-level operations table; userdata is the Server.
const fuse_lowlevel_ops& SquashfsOperations();

}  // namespace berth::daemon::image
