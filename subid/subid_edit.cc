#include "subid/subid_edit.h"

#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "subid/range_choice.h"

namespace berth::subid {
namespace {

// Apptainer's allocation bounds: the highest start leaves a free range
// above it; the lowest keeps clear of ordinary accounts' uids.
constexpr uint64_t kStartMax = (uint64_t{1} << 32) - 131072;
constexpr uint64_t kStartMin = 65536;

bool Free(const File& file, uint64_t start) {
  for (const Entry& e : file.entries) {
    if (e.valid && start < e.end() && e.start < start + kRangeCount) return false;
  }
  return true;
}

std::optional<uint32_t> FreeStart(const File& file) {
  for (uint64_t start = kStartMax; start >= kStartMin; start -= kRangeCount) {
    if (Free(file, start)) return static_cast<uint32_t>(start);
  }
  return std::nullopt;
}

absl::StatusOr<std::string> Add(File file, const User& user) {
  absl::StatusOr<const Entry*> existing = FindUserEntry(file, user, "");
  if (existing.ok() && *existing != nullptr) return Join(file.lines);
  std::optional<uint32_t> start = FreeStart(file);
  if (!start) return absl::ResourceExhaustedError("no range available");
  file.lines.push_back(absl::StrCat(user.uid, ":", *start, ":", kRangeCount));
  return Join(file.lines);
}

absl::StatusOr<std::string> Change(File file, EditOp op, const User& user, absl::string_view path) {
  absl::StatusOr<const Entry*> found = FindUserEntry(file, user, path);
  if (!found.ok()) return found.status();
  if (*found == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no mapping entry found in ", path, " for ", DisplayName(user)));
  }
  std::string& line = file.lines[(*found)->line];
  bool marked = absl::StartsWith(line, "!");
  if (op == EditOp::kRemove) {
    file.lines.erase(file.lines.begin() + static_cast<std::ptrdiff_t>((*found)->line));
  } else if (op == EditOp::kEnable && marked) {
    line.erase(0, 1);
  } else if (op == EditOp::kDisable && !marked) {
    line = absl::StrCat("!", line);
  }
  return Join(file.lines);
}

}  // namespace

absl::StatusOr<std::string> EditFile(absl::string_view text, EditOp op, const User& user,
                                     absl::string_view path) {
  File file = Parse(text);
  if (op == EditOp::kAdd) return Add(std::move(file), user);
  return Change(std::move(file), op, user, path);
}

}  // namespace berth::subid
