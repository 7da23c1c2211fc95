// Internal to deffile/: text handling with the exact semantics of the Go
// functions Apptainer's parser calls (strings.TrimSpace, bufio.ScanWords,
// bufio.ScanLines, strconv.Quote), so that berth splits and trims a
// definition file where Apptainer does. Not part of the module's API.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace berth::deffile::internal {

// Length of the Unicode white-space rune (Go's unicode.IsSpace) that starts
// at s[i], or 0 when s[i] does not start one. Invalid UTF-8 is never space.
size_t SpaceAt(absl::string_view s, size_t i);

// Length of the white-space rune that ends just before s[end], or 0.
size_t SpaceBefore(absl::string_view s, size_t end);

// strings.TrimSpace.
absl::string_view TrimSpace(absl::string_view s);

// The first word as bufio.ScanWords finds it: leading white space skipped,
// then everything up to the next white-space rune.
absl::string_view FirstWord(absl::string_view line);

// strings.Fields: the words between runs of white space.
std::vector<absl::string_view> Fields(absl::string_view s);

// ASCII lower-casing (section names and header keys are compared with
// ASCII vocabularies, so the other letters cannot make a valid name).
std::string AsciiLower(absl::string_view s);

// One line of a file as bufio.ScanLines returns it.
struct Line {
  size_t offset;           // where the line starts in the text
  absl::string_view text;  // without its '\n' and one trailing '\r'
};

// The lines of `text`; a final line without '\n' counts, an empty text has none.
std::vector<Line> SplitLines(absl::string_view text);

// RE2's \s (ASCII white space without \v) and \w, as Apptainer's regexps
// see them.
inline bool IsReSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}
inline bool IsReWord(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

// strconv.Quote, for warnings that reproduce Apptainer's %q.
std::string GoQuote(absl::string_view s);

// Control characters escaped (\n, \x01, ...) so a user-supplied name can
// sit inside a one-line error message.
std::string Printable(absl::string_view s);

}  // namespace berth::deffile::internal
