// Definitions in Apptainer's JSON form: `berth build --json OUT DEF.json`.
//
// Reads what json.h writes (a top-level array of stages) and what
// Apptainer's types.NewDefinitionFromJSON reads (one stage object) into the
// same ParsedFile the text parser gives, so the client's plan and the
// daemon's builder cannot tell the two apart. Pure like the rest of
// deffile/ (bytes in, no I/O); the daemon parses the bytes again itself.
//
// As Go's encoding/json: keys match case-insensitively, null reads as
// absent, a value of the wrong type is an error naming its field. Unknown
// keys, which Go drops without a word, give a warning. On top, the text
// parser's rules hold (header keywords, app names, %files sources and
// stages, section args) and hostile input is bounded: size, nesting, value
// count and NUL bytes are refused before the document is built. Errors are
// one line, "FILE:LINE: message", LINE being the JSON text's.
//
// The stages' text (raw, and the file's as Def.FILE) is written from what
// was read, as Apptainer's populateRaw does: a "raw" or "fullraw" in the
// input could say something else than what gets built, so it is only
// type-checked.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "deffile/deffile.h"

namespace berth::deffile {

// The nesting the shape needs is 6; a document may not go past this.
inline constexpr int kMaxJsonDepth = 10;
// Values (strings, objects, ...) in one document.
inline constexpr size_t kMaxJsonValues = 1 << 18;

// True when `bytes` is to be read as JSON: its first byte past white space
// is '{' or '['. No definition file can start so (the header line would
// have no valid keyword).
bool IsJsonDefinition(absl::string_view bytes);

// Parses a JSON definition. `args` must be empty (or warn_unused): a JSON
// definition has its build args substituted already.
absl::StatusOr<ParsedFile> ParseDefinitionJson(absl::string_view bytes, absl::string_view file_name,
                                               const BuildArgs& args);

// The JSON form when IsJsonDefinition(bytes), the text form otherwise.
absl::StatusOr<ParsedFile> ParseDefinition(absl::string_view bytes, absl::string_view file_name,
                                           const BuildArgs& args);

}  // namespace berth::deffile
