// `berth inspect` of a sandbox directory: its files read by the calling user
// through the directory descriptor, resolved with openat2 RESOLVE_IN_ROOT so
// that a symlink (absolute or "../..") names a file of the sandbox, as it
// would inside the container, never one of the host. No privilege.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "client/inspect/root_reader.h"
#include "common/unique_fd.h"

namespace berth::inspect {

class DirectoryReader : public RootReader {
 public:
  // `dir` is the sandbox's root, open as a directory.
  explicit DirectoryReader(UniqueFd dir) : dir_(std::move(dir)) {}

  absl::StatusOr<EntryType> Stat(absl::string_view path) override;
  absl::StatusOr<std::string> ReadFile(absl::string_view path, int64_t max_size) override;
  absl::StatusOr<std::vector<std::string>> ListDirectory(absl::string_view path) override;

 private:
  // Opens `path` inside the sandbox; NotFound when it is not there.
  absl::StatusOr<UniqueFd> OpenIn(absl::string_view path, int flags);
  UniqueFd dir_;
};

}  // namespace berth::inspect
