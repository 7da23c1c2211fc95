#include "daemon/image/mounted_image.h"

#include <malloc.h>
#include <unistd.h>

#include "absl/cleanup/cleanup.h"
#include "common/status_macros.h"
#include "daemon/image/squashfs_mount.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::image {

const char* MountBackendName(MountBackend backend) {
  switch (backend) {
    case MountBackend::kKernelDirect:
      return "kernel squashfs (direct)";
    case MountBackend::kKernelCopy:
      return "kernel squashfs (daemon copy)";
    case MountBackend::kFuse:
      return "FUSE";
    case MountBackend::kDirectory:
      return "sandbox directory bind";
  }
  return "?";
}

absl::StatusOr<std::unique_ptr<MountedImage>> MountedImage::Mount(const Source& source,
                                                                  const std::string& mount_point,
                                                                  int fuse_threads) {
  std::unique_ptr<MountedImage> image(new MountedImage());
  image->backend_ = source.backend;
  image->root_ = mount_point;
  RETURN_IF_ERROR(MakeMountPoint(mount_point));
  // Until a ScopedMount owns it, an error must remove the directory.
  absl::Cleanup remove_mount_point = [&] { rmdir(mount_point.c_str()); };
  if (source.backend == MountBackend::kFuse) {
    auto fuse = FuseSquashfsMount::Mount(source.fd, source.offset, mount_point, fuse_threads);
    if (!fuse.ok()) return Annotate(fuse.status(), "FUSE");
    image->fuse_ = std::move(fuse).value();
  } else {
    auto loop = ScopedLoopDevice::Attach(source.fd, source.offset, source.size, source.loop_tag);
    if (!loop.ok()) return Annotate(loop.status(), "loop device");
    image->loop_ = std::move(loop).value();
    auto mount = MountKernelSquashfs(image->loop_.path(), mount_point);
    if (!mount.ok()) return Annotate(mount.status(), "squashfs mount");
    image->kernel_mount_ = std::move(mount).value();
  }
  std::move(remove_mount_point).Cancel();
  spdlog::info("mounted {} at {} ({})", image->loop_.path().empty() ? "image" : image->loop_.path(),
               mount_point, MountBackendName(source.backend));
  return image;
}

void MountedImage::Trim() {
  if (!fuse_) return;
  fuse_->Trim();
  // glibc keeps freed arenas mapped; the daemon idles for hours between jobs.
  malloc_trim(0);
}

MountedImage::~MountedImage() {
  fuse_.reset();
  kernel_mount_.Reset();
  if (backend_ == MountBackend::kFuse) malloc_trim(0);
  spdlog::info("unmounted {}", root_);
}

}  // namespace berth::daemon::image
