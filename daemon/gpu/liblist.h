// The admin's lists of host driver files for --nv and --rocm
// (<config-dir>/nvliblist.conf, rocmliblist.conf), in Apptainer's format so
// a site's edited list keeps working: one entry per line, `#` comments and
// blank lines ignored, and each entry's kind decided by its shape:
//   - a bare name containing ".so" is a library, matched as a *prefix* of
//     the names in the host's loader cache (libcuda.so → libcuda.so.1);
//   - an absolute path containing ".so" is that library (plus the symlinks
//     in its directory that resolve to it);
//   - any other bare name is a binary, looked up on a fixed search path and
//     bound at /usr/bin/<name>;
//   - any other absolute path is a file bound at the same path (the EGL and
//     Vulkan ICD JSON files).
// Parsing is strict where Apptainer is lax: a relative path, whitespace
// inside an entry or a ".." component is refused with "FILE:LINE: why",
// because the daemon resolves these names as root for every user.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::daemon::gpu {

struct LibListEntry {
  enum Kind { kLibraryName, kLibraryPath, kBinary, kFile };
  Kind kind = kLibraryName;
  std::string value;
  int line = 0;
};

// Parses the list's text; `origin` names the file in messages.
absl::StatusOr<std::vector<LibListEntry>> ParseLibList(absl::string_view text,
                                                       const std::string& origin);

}  // namespace berth::daemon::gpu
