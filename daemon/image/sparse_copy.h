// Copying a byte range of an image into the daemon's stores without filling
// its holes.
//
// A user can hand the daemon a file that uses 1 MiB of disk but is 513 MiB
// long (the rest a hole). A plain copy allocates every byte in root's state
// directory. Here only the data extents (lseek SEEK_DATA / SEEK_HOLE) are
// copied; holes stay holes in the copy, and the stores count a copy by the
// blocks it really allocates (st_blocks). The digest still covers every byte
// (holes hash as zeros), so a copy is named by its content as before.
#pragma once

#include <sys/stat.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/digest.h"

namespace berth::daemon::image {

// Bytes the data extents of [offset, offset+size) of `fd` occupy, rounded up
// to whole 4 KiB blocks: what a sparse copy of the range will allocate.
int64_t DataBytesOfRange(int fd, int64_t offset, int64_t size);

// Copies [offset+done, offset+size) of `source_fd` to `dest_fd` at `done`,
// data extents only, and feeds every byte of the range (holes as zeros) to
// `hasher` when one is given; `dest_fd` ends `size` bytes long. What is
// hashed is what was written: the source may change under the copy.
absl::Status CopySparseRange(int source_fd, int64_t offset, int64_t done, int64_t size, int dest_fd,
                             Hasher* hasher);

// Allocated bytes of a file (st_blocks), the unit of the stores' budgets.
int64_t AllocatedBytes(const struct stat& st);

}  // namespace berth::daemon::image
