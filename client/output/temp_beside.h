// Outputs the client writes for the user (pulled and built images,
// sandboxes): made by the client itself, as the user, beside their final
// name, so that berthd only ever writes through a descriptor the user
// opened, and a half-written output never carries the final name.
#pragma once

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace berth::client {

// The directory part of `path` ("." when it has none).
std::string DirOf(const std::string& path);
// The last component of `path`.
std::string BaseOf(const std::string& path);

// A new, empty file `DIR/.BASE.berth-XXXXXX` beside `path`, mode 0755 less
// the umask (an image is executable, as Apptainer makes it). Returns the
// descriptor and the temp name; the caller renames or unlinks it.
absl::StatusOr<std::pair<UniqueFd, std::string>> CreateTempFileBeside(const std::string& path);

// The same as a directory (a sandbox), opened O_DIRECTORY|O_NOFOLLOW.
absl::StatusOr<std::pair<UniqueFd, std::string>> CreateTempDirBeside(const std::string& path);

}  // namespace berth::client
