// Finding the root filesystem inside a SIF image: its primary system
// partition, which berth accepts only as squashfs; or another squashfs
// partition by descriptor id, for a bind's image-src.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "sif/image.h"

namespace berth::daemon::image {

struct SquashfsPartition {
  int64_t offset = 0;  // absolute, in the SIF file
  int64_t size = 0;
};

// The primary partition of a validated SIF, checked to be a squashfs whose
// superblock is sane and fits inside the partition. Errors are one line,
// naming the problem ("has no primary system partition", "primary partition
// is Ext3, not squashfs", "no squashfs at partition offset ...").
absl::StatusOr<SquashfsPartition> FindPrimarySquashfs(const sif::Image& image);

// The partition with descriptor id `id` (Apptainer's bind option id=N), checked
// the same way: a data or overlay partition holding a squashfs.
absl::StatusOr<SquashfsPartition> FindSquashfsById(const sif::Image& image, uint32_t id);

}  // namespace berth::daemon::image
