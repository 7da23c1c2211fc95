// Internal to deffile/: one stage's text -> Definition, with Apptainer's
// scanner (pkg/build/types/parser/deffile.go) reproduced rule by rule: the
// header is everything before the first line whose first word starts with
// '%', sections run to the next such line, and the quirks are kept (see
// docs/architecture.md, "deffile/"). Errors are "FILE:LINE: message".
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "deffile/definition.h"
#include "deffile/go_text.h"
#include "deffile/source_map.h"

namespace berth::deffile::internal {

// Parses one stage. nullopt when the stage holds nothing at all (only
// blank lines and comments), which Apptainer drops without a word. `raw`
// of the result is left empty for the caller.
absl::StatusOr<std::optional<Definition>> ParseStage(absl::string_view text,
                                                     const SourceMap& source);

// The header lines (those before the first section) into `header`.
absl::Status ParseHeader(std::span<const Line> lines, const SourceMap& source, Header& header);

// The first two tokens of a %files line as Apptainer's fileSplitter regexp
// finds them (double-quoted strings, a single quote up to the next one, and
// unsubstituted {{ templates }} kept whole), in linear time.
std::vector<absl::string_view> FilesLineTokens(absl::string_view line);

// A header key Apptainer knows (already lower-case): formats.md §5.1, and
// otherurl<N>.
bool ValidKey(absl::string_view key);

// An app section's name ("apprun", ...; lower-case).
bool IsAppSection(absl::string_view name);

// Names that could not be a directory under /scif/apps: Apptainer takes them
// as they come; berth refuses them, saying where.
bool ValidAppName(absl::string_view name);

// Apptainer's GetLabels: "KEY value" lines, split at the first space.
void ParseLabels(absl::string_view body, std::map<std::string, std::string>& labels);

}  // namespace berth::deffile::internal
