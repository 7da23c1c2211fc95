// Reads files out of a squashfs filesystem stored inside an image file,
// without mounting it.
//
// `berth inspect` runs as the user, with no daemon, FUSE or mount, to show an
// image's labels or runscript. This reader wraps libsquashfs (squashfs-tools-ng)
// over a byte range of a descriptor the caller already opened: a SIF partition,
// or a whole .sqfs file. It treats every image byte as hostile:
// - reads outside the range fail;
// - the super block is checked against the range before any table is loaded;
// - paths are resolved by our own walk, which bounds symlink depth, lookups and
//   directory sizes. ".." stops at the image root and absolute links restart
//   there, so a path never leaves the image;
// - files are read only up to a cap the caller sets.
// Inconsistencies become absl::Status errors. Nothing aborts or loops, and
// allocations stay small.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/inspect/root_reader.h"

namespace berth::inspect {

// Limits on the work a hostile image can cause.
inline constexpr int kMaxSymlinkFollows = 40;  // Linux's MAXSYMLINKS
inline constexpr int kMaxPathLookups = 1024;
inline constexpr int64_t kMaxDirectoryBytes = 8 << 20;      // one listing
inline constexpr int64_t kDirectoryBudgetBytes = 64 << 20;  // all listings, per reader
inline constexpr size_t kMaxSymlinkTarget = 4095;           // PATH_MAX - 1

class SquashfsReader : public RootReader {
 public:
  // Opens the squashfs stored at [offset, offset + size) of `fd`. The reader
  // only preads `fd`, which must stay open for the reader's lifetime.
  static absl::StatusOr<std::unique_ptr<SquashfsReader>> Open(int fd, int64_t offset, int64_t size);
  ~SquashfsReader() override;
  SquashfsReader(const SquashfsReader&) = delete;
  SquashfsReader& operator=(const SquashfsReader&) = delete;

  // The type of what `path` (absolute within the image) names.
  absl::StatusOr<EntryType> Stat(absl::string_view path) override;
  // The contents of the regular file at `path`. NotFound when nothing is
  // there or it is not a regular file; ResourceExhausted when the file is
  // larger than `max_size` (or than 64 MiB, whatever `max_size` says).
  absl::StatusOr<std::string> ReadFile(absl::string_view path, int64_t max_size) override;
  // Names in the directory at `path`, sorted bytewise. NotFound when it is
  // missing or not a directory.
  absl::StatusOr<std::vector<std::string>> ListDirectory(absl::string_view path) override;

 private:
  struct State;
  explicit SquashfsReader(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace berth::inspect
