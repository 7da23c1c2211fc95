// An in-process, multi-threaded FUSE server for one squashfs partition.
//
// User mode has no kernel squashfs mounts (no root), and the policy
// `kernel squashfs = never` forbids them; both serve the image from inside
// berthd instead of spawning a squashfuse process per container. The server
// is libfuse3's low-level API driven by libsquashfuse's squashfs reader.
//
// Threading: libfuse's multi-threaded loop runs the requests on a pool of
// daemon threads. libsquashfuse 0.1.x keeps its block caches inside the
// `sqfs` object without locks, so each request borrows a whole `sqfs`
// instance from a small pool (one per concurrently busy thread, created on
// demand, all reading the same descriptor with pread). Inode numbers are the
// squashfs inode ids (64-bit fuse_ino_t), so they mean the same in every
// instance and need no shared table. The kernel caches attributes, entries
// (also negative ones), symlinks, directory listings and file pages for the
// life of the mount: the image never changes under it. It also opens files
// and directories without asking the server (no OPEN/RELEASE round trips),
// so a warm container start sends no request at all.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace berth::daemon::image {

class FuseSquashfsMount {
 public:
  // Mounts the squashfs found at `offset` of `image_fd` (duplicated; the
  // caller keeps its own) at the existing empty directory `target`, read-only,
  // nosuid, nodev, with the kernel enforcing the image's file modes
  // (default_permissions) for every user (allow_other).
  // The mount(2) is made directly on /dev/fuse, never through fusermount.
  // Privilege: root, or CAP_SYS_ADMIN in the daemon's own user namespace
  // (user mode, see user_namespace.h); /dev/fuse must be accessible.
  static absl::StatusOr<std::unique_ptr<FuseSquashfsMount>> Mount(int image_fd, int64_t offset,
                                                                  const std::string& target,
                                                                  int max_threads);

  // Detaches the mount; the server threads stop once the kernel drops the
  // connection (immediately, unless a process still has files open in it; we
  // wait a few seconds, then leave the server to finish on its own).
  ~FuseSquashfsMount();

  const std::string& path() const;

  // Requests the server has answered, by kind (for tests and diagnosis):
  // what the kernel's caches keep from reaching it.
  struct RequestCounts {
    uint64_t lookups = 0;
    uint64_t opens = 0;     // OPEN, answered or declined (ENOSYS)
    uint64_t opendirs = 0;  // OPENDIR, likewise
    uint64_t reads = 0;
  };
  RequestCounts request_counts() const;

  // Gives back the memory the server caches for speed (decompressed blocks,
  // extra readers) while no container uses the image; the kernel's page
  // cache of the mount keeps what was read.
  void Trim();

  struct Server;  // fuse_squashfs.cc

 private:
  explicit FuseSquashfsMount(std::shared_ptr<Server> server);
  std::shared_ptr<Server> server_;
};

}  // namespace berth::daemon::image
