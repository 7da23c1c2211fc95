// The first line of defence for Run: every field of a RunRequest is checked
// for shape and size before anything acts on it. A request from any user may
// carry NUL bytes, relative paths, `..` games, oversize lists or descriptor
// numbers it never passed; each is refused with one line naming the field.
//
// Checks that need the filesystem (can the caller read this path?) are not
// made here: they happen when the daemon opens the path as the caller.
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "berth/v1/berth.pb.h"
#include "daemon/policy/config.h"

namespace berth::daemon {

struct RequestLimits {
  size_t max_args = 4096;
  size_t max_env_entries = 4096;
  size_t max_arg_bytes = 128 * 1024;
  size_t max_total_bytes = 4 * 1024 * 1024;
  size_t max_binds = 256;
  size_t max_fds = 64;
};

// `handed_fds` is how many descriptors the connection's preamble carried.
absl::Status CheckRunRequest(const v1::RunRequest& request, size_t handed_fds,
                             const policy::Config& config, const RequestLimits& limits = {});

// An absolute path with no NUL, no "." or ".." component, within PATH_MAX.
absl::Status CheckAbsolutePath(absl::string_view field, absl::string_view path);

}  // namespace berth::daemon
