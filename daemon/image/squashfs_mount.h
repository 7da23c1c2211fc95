// The kernel squashfs mount of an image partition, and the sanity checks
// made on the partition before any driver (kernel or FUSE) sees it.
//
// The checks are cheap and catch what users actually hand us (a partition
// that is not squashfs, a truncated copy); they are not a substitute for the
// trust/copy policy (mount_cache.h): the kernel driver still only ever reads
// bytes no user can change underneath it.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "daemon/image/scoped_mount.h"

namespace berth::daemon::image {

// Reads the squashfs superblock at `offset` of `fd` and checks the magic
// ("hsqs"), the version (4.0), the block size, and that the filesystem fits
// in the `size` bytes of the partition.
absl::Status CheckSquashfsSuperblock(int fd, int64_t offset, int64_t size);

// Mounts the squashfs on block device `device` at the existing empty
// directory `target` with the new mount API (fsopen/fsconfig/fsmount/
// move_mount), read-only, nosuid, nodev. The kernel's own error text (read
// from the fs context) is part of the error.
// Privilege: root (CAP_SYS_ADMIN in the initial user namespace).
absl::StatusOr<ScopedMount> MountKernelSquashfs(const std::string& device,
                                                const std::string& target);

}  // namespace berth::daemon::image
