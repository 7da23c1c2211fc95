#include "deffile/stages.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "deffile/deffile.h"
#include "deffile/go_text.h"

namespace berth::deffile::internal {
namespace {

bool StartsStage(absl::string_view line) {
  return absl::StartsWithIgnoreCase(line, "bootstrap:");
}

bool OpensSection(absl::string_view line) {
  absl::string_view word = FirstWord(line);
  return !word.empty() && word.front() == '%';
}

// Line `number` of `bytes`, for errors before any stage exists.
absl::Status LineError(absl::string_view file, int number, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(file, ":", number, ": ", message));
}

}  // namespace

absl::Status CheckLimits(absl::string_view bytes, absl::string_view file) {
  size_t stages = 0, sections = 0;
  int number = 0;
  // Over the size limit the caller passes only the first kMaxFileBytes + 1
  // bytes; an overlong line among them is still named.
  for (const Line& line : SplitLines(bytes)) {
    ++number;
    if (line.text.size() > kMaxLineBytes) {
      return LineError(file, number,
                       absl::StrCat("line is longer than ", kMaxLineBytes >> 20,
                                    " MiB (the limit for one line of a definition file)"));
    }
    if (line.text.find('\0') != absl::string_view::npos) {
      return LineError(file, number, "NUL byte: a definition file is text");
    }
    if (StartsStage(line.text) && ++stages > kMaxStages) {
      return LineError(file, number,
                       absl::StrCat("more than ", kMaxStages, " stages (the limit per file)"));
    }
    if (OpensSection(line.text) && ++sections > kMaxSections) {
      return LineError(file, number,
                       absl::StrCat("more than ", kMaxSections, " sections (the limit per file)"));
    }
  }
  if (bytes.size() > kMaxFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": larger than ", kMaxFileBytes >> 20,
                                                   " MiB (the limit for a definition file)"));
  }
  return absl::OkStatus();
}

std::vector<Chunk> SplitStages(absl::string_view bytes) {
  std::vector<Chunk> chunks;
  size_t start = 0;
  int start_line = 1, line = 1;
  for (size_t pos = 0; pos < bytes.size(); ++line) {
    size_t nl = bytes.find('\n', pos);
    size_t next = nl == absl::string_view::npos ? bytes.size() : nl + 1;
    if (pos > start && StartsStage(bytes.substr(pos, next - pos))) {
      chunks.push_back({bytes.substr(start, pos - start), start_line});
      start = pos;
      start_line = line;
    }
    pos = next;
  }
  if (start < bytes.size()) chunks.push_back({bytes.substr(start), start_line});
  return chunks;
}

}  // namespace berth::deffile::internal
