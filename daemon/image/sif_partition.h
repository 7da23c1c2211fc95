// Finding the root filesystem inside a SIF image: its primary system
// partition, which berth accepts only as squashfs.
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

}  // namespace berth::daemon::image
