// Internal to deffile/: the first pass over the raw bytes. It enforces the
// input limits (deffile.h) before anything else runs, then cuts the file
// into stages where Apptainer does: before every line that starts, in column
// 0, with "bootstrap:" in any case.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace berth::deffile::internal {

// Size, line length, NUL bytes, and the number of stages and sections.
absl::Status CheckLimits(absl::string_view bytes, absl::string_view file);

struct Chunk {
  absl::string_view text;  // from its "bootstrap:" line to the next one
  int first_line = 1;
};

// The text above the first "bootstrap:" line is a chunk of its own; empty
// chunks are left out.
std::vector<Chunk> SplitStages(absl::string_view bytes);

}  // namespace berth::deffile::internal
