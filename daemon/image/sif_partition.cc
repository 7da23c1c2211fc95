#include "daemon/image/sif_partition.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "daemon/image/squashfs_mount.h"
#include "sif/format.h"

namespace berth::daemon::image {

absl::StatusOr<SquashfsPartition> FindPrimarySquashfs(const sif::Image& image) {
  const sif::Descriptor* primary = image.PrimaryPartition();
  if (primary == nullptr) {
    return absl::InvalidArgumentError(
        "image has no primary system partition (a SIF root filesystem)");
  }
  const int32_t fs_type = primary->Partition().fs_type;
  if (fs_type != static_cast<int32_t>(sif::FsType::kSquashfs)) {
    return absl::InvalidArgumentError(absl::StrCat("primary partition is ",
                                                   sif::FsTypeName(fs_type),
                                                   ", not squashfs (berth mounts squashfs only)"));
  }
  SquashfsPartition partition{primary->offset, primary->size};
  RETURN_IF_ERROR(CheckSquashfsSuperblock(image.fd(), partition.offset, partition.size));
  return partition;
}

absl::StatusOr<SquashfsPartition> FindSquashfsById(const sif::Image& image, uint32_t id) {
  ASSIGN_OR_RETURN(const sif::Descriptor* d, image.FindById(id));
  if (d->data_type != static_cast<int32_t>(sif::DataType::kPartition)) {
    return absl::InvalidArgumentError(absl::StrCat("object ", id, " is not a partition"));
  }
  const int32_t fs_type = d->Partition().fs_type;
  if (fs_type != static_cast<int32_t>(sif::FsType::kSquashfs)) {
    return absl::InvalidArgumentError(absl::StrCat("partition ", id, " is ",
                                                   sif::FsTypeName(fs_type),
                                                   ", not squashfs (berth mounts squashfs only)"));
  }
  SquashfsPartition partition{d->offset, d->size};
  RETURN_IF_ERROR(CheckSquashfsSuperblock(image.fd(), partition.offset, partition.size));
  return partition;
}

}  // namespace berth::daemon::image
