// Internal to deffile/: turns a byte offset in the text being parsed into
// the line of the definition file it came from, and formats errors as
// "FILE:LINE: message". Build args can change line lengths and even add
// lines, so a stage's substituted text carries anchors back to its original.
#pragma once

#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace berth::deffile::internal {

class SourceMap {
 public:
  // `original` is one stage's text as it is in the file (it must outlive
  // this object) and begins at line `first_line` of the file named `file`.
  SourceMap(absl::string_view file, absl::string_view original, int first_line);

  // Declares that from `parsed` on, the parsed text is a verbatim copy of
  // the original from `original` on (`copy`), or is a replacement for the
  // template that starts there (not `copy`). Offsets must increase.
  void AddAnchor(size_t parsed, size_t original, bool copy);

  // The file line of the parsed text's byte at `offset`.
  int LineOf(size_t offset) const;

  // InvalidArgument "FILE:LINE: message" for the byte at `offset`.
  absl::Status ErrorAt(size_t offset, absl::string_view message) const;
  // The same for a line number already known.
  absl::Status ErrorAtLine(int line, absl::string_view message) const;

  absl::string_view file() const { return file_; }

 private:
  struct Anchor {
    size_t parsed;
    size_t original;
    bool copy;
  };
  size_t ToOriginal(size_t offset) const;

  absl::string_view file_;
  std::vector<size_t> newlines_;  // offsets of '\n' in the original
  int first_line_;
  std::vector<Anchor> anchors_;  // empty: the identity
};

}  // namespace berth::deffile::internal
