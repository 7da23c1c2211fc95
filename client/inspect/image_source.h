// The image `berth inspect` reads: a SIF, a bare squashfs file, or a sandbox
// directory.
//
// Inspection runs as the calling user on a file the user names and can
// already open, so no privilege is involved. From a SIF we read metadata
// objects (Def.FILE, inspect-metadata.json) and the primary partition. From
// a bare squashfs file we read the file itself; from a sandbox, its files
// (directory_reader.h). The root filesystem is opened
// on first use, so an image whose metadata answers the question is never
// decompressed.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/inspect/root_reader.h"
#include "client/inspect/squashfs_reader.h"
#include "common/unique_fd.h"
#include "sif/format.h"
#include "sif/image.h"

namespace berth::inspect {

class ImageSource {
 public:
  // Opens `path` read-only and recognises its format. A failure names `path`.
  static absl::StatusOr<ImageSource> Open(const std::string& path);

  ImageSource(ImageSource&&) = default;
  ImageSource& operator=(ImageSource&&) = default;

  bool is_sif() const { return sif_.has_value(); }

  // The data of the first SIF object of `type` (named `name`, when not
  // empty), or nullopt when there is none (always for bare squashfs).
  // Objects larger than `max_size` are an error.
  absl::StatusOr<std::optional<std::string>> ReadSifObject(sif::DataType type,
                                                           absl::string_view name,
                                                           int64_t max_size) const;

  // The image's root filesystem, opened on the first call. The reader lives
  // as long as this object.
  absl::StatusOr<RootReader*> Root();

 private:
  ImageSource() = default;
  absl::StatusOr<std::unique_ptr<RootReader>> OpenRoot();

  std::optional<sif::Image> sif_;
  UniqueFd squashfs_fd_;   // a bare squashfs file
  UniqueFd directory_fd_;  // a sandbox
  int64_t squashfs_size_ = 0;
  std::unique_ptr<RootReader> root_;
};

}  // namespace berth::inspect
