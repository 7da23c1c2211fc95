#include "deffile/source_map.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace berth::deffile::internal {

SourceMap::SourceMap(absl::string_view file, absl::string_view original, int first_line)
    : file_(file), first_line_(first_line) {
  for (size_t i = original.find('\n'); i != absl::string_view::npos;
       i = original.find('\n', i + 1)) {
    newlines_.push_back(i);
  }
}

void SourceMap::AddAnchor(size_t parsed, size_t original, bool copy) {
  anchors_.push_back({parsed, original, copy});
}

size_t SourceMap::ToOriginal(size_t offset) const {
  if (anchors_.empty()) return offset;
  auto after = std::upper_bound(anchors_.begin(), anchors_.end(), offset,
                                [](size_t o, const Anchor& a) { return o < a.parsed; });
  if (after == anchors_.begin()) return offset;
  const Anchor& a = *std::prev(after);
  return a.copy ? a.original + (offset - a.parsed) : a.original;
}

int SourceMap::LineOf(size_t offset) const {
  size_t original = ToOriginal(offset);
  auto before = std::lower_bound(newlines_.begin(), newlines_.end(), original);
  return first_line_ + static_cast<int>(before - newlines_.begin());
}

absl::Status SourceMap::ErrorAt(size_t offset, absl::string_view message) const {
  return ErrorAtLine(LineOf(offset), message);
}

absl::Status SourceMap::ErrorAtLine(int line, absl::string_view message) const {
  return absl::InvalidArgumentError(absl::StrCat(file_, ":", line, ": ", message));
}

}  // namespace berth::deffile::internal
