// Apptainer's bind syntax, as users type it in -B/--bind and APPTAINER_BIND:
// "src[:dst[:opts]]" entries separated by commas, opts "ro" or "rw".
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::client {

struct BindEntry {
  std::string source;       // absolute (relative sources are taken from `cwd`)
  std::string destination;  // absolute; defaults to the source
  bool read_only = false;
};

// Parses one flag value (which may hold several comma-separated entries).
absl::StatusOr<std::vector<BindEntry>> ParseBinds(const std::string& value, const std::string& cwd);

}  // namespace berth::client
