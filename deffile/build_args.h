// Internal to deffile/: build arguments, as Apptainer's
// internal/pkg/build/args reads and applies them.
//
// `{{ NAME }}` (the regexp `{{\s*(\w+)\s*}}`) is replaced in one pass over a
// stage's text; a replacement is skipped when, on its line, a '#' followed by
// anything but '!' comes before it. A value's own `{{ X }}` references are
// resolved one level deep, and replaced text is never scanned again, so a
// value that names itself cannot loop or grow.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "deffile/source_map.h"

namespace berth::deffile::internal {

using ArgMap = std::map<std::string, std::string, std::less<>>;

// Apptainer's getKeyVal: "K=V" split at the first '=', both sides trimmed.
absl::Status SplitKeyValue(absl::string_view text, std::string& key, std::string& value);

// The defaults of one stage's %arguments body; other lines give warnings.
ArgMap ReadDefaults(absl::string_view arguments, std::vector<std::string>& warnings);

struct Substituted {
  std::string text;
  bool changed = false;
  std::map<std::string, std::string> used;  // arguments substituted, with their values
};

// Substitutes in `text` (one stage, located by `original`), command-line
// values first, then `defaults`. Anchors from the result back to `text` go
// into `result_map`. The result may not grow beyond `budget` bytes.
absl::StatusOr<Substituted> SubstituteBuildArgs(absl::string_view text, const ArgMap& command_line,
                                                const ArgMap& defaults, const SourceMap& original,
                                                SourceMap& result_map, size_t budget);

}  // namespace berth::deffile::internal
