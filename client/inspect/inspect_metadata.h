// Apptainer's inspect data model and its two output forms.
//
// `apptainer inspect` fills a Metadata value (pkg/inspect/metadata.go), then
// prints it as sections of text or as Go's json.MarshalIndent(v, "", "\t").
// The same JSON, captured at build time, is stored in a SIF as
// inspect-metadata.json. Scripts parse this output, so the code below
// reproduces it byte for byte:
// - the JSON key order is Go's struct field order;
// - empty fields are omitted, as omitempty does;
// - map keys are sorted bytewise;
// - strings are escaped as encoding/json escapes them (HTML characters,
//   U+2028/2029, invalid UTF-8).
// Parsing uses nlohmann-json without exceptions and follows Go's rules
// wherever a malformed labels.json would otherwise print something different.
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/go_json.h"

namespace berth::inspect {

using StringMap = std::map<std::string, std::string>;

struct AppAttributes {
  StringMap environment;  // env script path in the image -> its content
  StringMap labels;
  std::string runscript;
  std::string startscript;
  std::string test;
  std::string helpfile;
};

struct Attributes {
  std::map<std::string, AppAttributes> apps;
  StringMap environment;
  StringMap labels;
  std::string runscript;
  std::string test;
  std::string helpfile;
  std::string deffile;
  std::string startscript;
};

// `{"data":{"attributes":{...}},"type":"container"}` exactly as Apptainer
// prints it (tab indentation, trailing newline).
std::string RenderJson(const Attributes& attributes);

// The text form: app names (with `list_apps`), deffile, runscript, start
// script, test, help, environment scripts under `=== path ===` headers and
// `key: value` labels, each section only when non-empty. When a top-level
// section is empty, `app_name`'s version of it is printed instead, as
// Apptainer does for `--app`.
std::string RenderText(const Attributes& attributes, const std::string& app_name, bool list_apps);

// labels.json decoded as Go's json.Unmarshal into map[string]string decodes
// it. Apptainer keeps whatever decoded and warns about the rest: a syntax
// error gives no labels, and a non-string value is skipped. `warning` is empty
// when all went well.
struct ParsedLabels {
  StringMap labels;
  std::string warning;
};
ParsedLabels ParseLabels(absl::string_view text);

// The SIF's inspect-metadata.json. Any shape Go's decoder would reject is an
// error, which the caller reports as a warning before falling back to reading
// the container.
absl::StatusOr<Attributes> ParseInspectMetadata(absl::string_view text);

}  // namespace berth::inspect
