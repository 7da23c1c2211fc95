// One read-only mount of one squashfs partition, by whichever backend the
// policy chose: the kernel driver on a loop device (over the caller's file,
// or over the daemon's immutable copy), or the in-process FUSE server.
// Destroying it unmounts and frees the loop device, in that order.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/image/fuse_squashfs.h"
#include "daemon/image/loop_device.h"
#include "daemon/image/scoped_mount.h"

namespace berth::daemon::image {

enum class MountBackend {
  kKernelDirect,  // kernel squashfs on the caller's (trusted) file
  kKernelCopy,    // kernel squashfs on the daemon's immutable copy
  kFuse,          // in-process FUSE (user mode, or policy "never")
  kDirectory,     // a bind of a sandbox directory (directory_mount.h)
};
const char* MountBackendName(MountBackend backend);

class MountedImage {
 public:
  struct Source {
    int fd = -1;  // the image file or the stored copy; only used during Mount
    int64_t offset = 0;
    int64_t size = 0;
    MountBackend backend = MountBackend::kKernelDirect;
    std::string loop_tag = "berth";  // the loop device's lo_file_name (kernel backends)
  };

  // Creates `mount_point` and mounts the source's squashfs on it; on any
  // error nothing is left behind (no loop device, mount or directory).
  // Privilege: root for the kernel backends; see FuseSquashfsMount for FUSE.
  static absl::StatusOr<std::unique_ptr<MountedImage>> Mount(const Source& source,
                                                             const std::string& mount_point,
                                                             int fuse_threads);
  ~MountedImage();

  const std::string& root() const { return root_; }
  MountBackend backend() const { return backend_; }
  const std::string& loop_device() const { return loop_.path(); }  // empty for FUSE
  int loop_number() const { return loop_.number(); }               // -1 for FUSE
  // No container uses the mount for now: free what the FUSE server caches.
  void Trim();

 private:
  MountedImage() = default;

  // Declaration order is teardown order reversed: the mount goes first, then
  // our hold on the loop device (autoclear frees it once unmounted).
  ScopedLoopDevice loop_;
  ScopedMount kernel_mount_;
  std::unique_ptr<FuseSquashfsMount> fuse_;
  std::string root_;
  MountBackend backend_ = MountBackend::kKernelDirect;
};

}  // namespace berth::daemon::image
