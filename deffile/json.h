// The parsed stages as JSON: `berth build --dry-run --json`.
//
// Apptainer's types.Definition as encoding/json's MarshalIndent(v, "", "  ")
// writes it (map keys sorted, Go's string escapes, "raw" in base64), with
// the shape build.md §2 fixes: a top-level array of stages, no "fullraw",
// "customData" and "appOrder" left out when empty.
#pragma once

#include <string>
#include <vector>

#include "deffile/definition.h"

namespace berth::deffile {

// The JSON text, ending in a newline.
std::string DefinitionsToJson(const std::vector<Definition>& stages);

}  // namespace berth::deffile
