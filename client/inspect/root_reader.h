// Read access to an image's root filesystem for `berth inspect`: a squashfs
// read without mounting it (squashfs_reader.h) or a sandbox directory
// (directory_reader.h). Paths are absolute within the image; symlinks are
// followed but never leave it. Runs as the calling user: no privilege.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::inspect {

// What a path names once symlinks are followed (`test -f`/`-d` semantics).
enum class EntryType { kMissing, kRegular, kDirectory, kOther };

class RootReader {
 public:
  virtual ~RootReader() = default;
  // The type of what `path` names.
  virtual absl::StatusOr<EntryType> Stat(absl::string_view path) = 0;
  // The contents of the regular file at `path`. NotFound when nothing is
  // there or it is not a regular file; ResourceExhausted when it is larger
  // than `max_size`.
  virtual absl::StatusOr<std::string> ReadFile(absl::string_view path, int64_t max_size) = 0;
  // Names in the directory at `path`, sorted bytewise. NotFound when it is
  // missing or not a directory.
  virtual absl::StatusOr<std::vector<std::string>> ListDirectory(absl::string_view path) = 0;
};

}  // namespace berth::inspect
