#include "subid/range_choice.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace berth::subid {
namespace {

// uid_t/gid_t (uint32_t)-1 is the kernel's "no id"; a map may not reach it.
constexpr uint64_t kIdLimit = std::numeric_limits<uint32_t>::max();

bool Contains(Range r, uint32_t id) {
  return id >= r.start && uint64_t{id} < uint64_t{r.start} + r.count;
}

bool Overlaps(Range r, const Entry& e) {
  return uint64_t{r.start} < e.end() && uint64_t{e.start} < uint64_t{r.start} + r.count;
}

std::string Subject(const User& user, Range r, absl::string_view path) {
  return absl::StrCat(path, ": the range ", DescribeRange(r.start, r.count), " of user ",
                      DisplayName(user));
}

}  // namespace

absl::StatusOr<const Entry*> FindUserEntry(const File& file, const User& user,
                                           absl::string_view path) {
  const Entry* largest = nullptr;
  bool smaller = false;
  for (const Entry& e : file.entries) {
    if (!e.valid || !OwnedBy(e, user)) continue;
    if (e.count == kRangeCount) return &e;
    if (e.count < kRangeCount) {
      smaller = true;
    } else if (largest == nullptr || e.count > largest->count) {
      largest = &e;
    }
  }
  if (largest != nullptr) return largest;
  if (smaller) {
    return absl::FailedPreconditionError(
        absl::StrFormat("mapping entries for user %s found in %s but all with a range count "
                        "lower than %d",
                        DisplayName(user), path, kRangeCount));
  }
  return nullptr;
}

absl::StatusOr<std::optional<Range>> ChooseRange(const File& file, const User& user,
                                                 absl::string_view path) {
  absl::StatusOr<const Entry*> entry = FindUserEntry(file, user, path);
  if (!entry.ok()) return entry.status();
  if (*entry == nullptr) return std::nullopt;
  if ((*entry)->disabled) {
    return absl::PermissionDeniedError(
        "your fakeroot mapping has been disabled by the administrator");
  }
  return Range{(*entry)->start, (*entry)->count};
}

absl::Status CheckRangeIsSafe(const File& file, const User& user, Range range, uint32_t own_id,
                              absl::string_view path, absl::string_view kind) {
  if (uint64_t{range.start} + range.count > kIdLimit) {
    return absl::FailedPreconditionError(
        absl::StrCat(Subject(user, range, path), " runs past the last valid ", kind, " ",
                     kIdLimit - 1, ": fix the entry (berth config fakeroot --add allocates one)"));
  }
  if (Contains(range, 0)) {
    return absl::FailedPreconditionError(
        absl::StrCat(Subject(user, range, path), " includes ", kind,
                     " 0, the host's root, which fakeroot never maps: give the user a range "
                     "above 65535 (berth config fakeroot --add allocates one)"));
  }
  if (Contains(range, own_id)) {
    return absl::FailedPreconditionError(absl::StrCat(
        Subject(user, range, path), " includes the user's own ", kind, " ", own_id,
        ", which fakeroot already maps to root: give the user a range that leaves it out"));
  }
  for (const Entry& e : file.entries) {
    if (!e.valid || OwnedBy(e, user) || !Overlaps(range, e)) continue;
    return absl::FailedPreconditionError(
        absl::StrCat(Subject(user, range, path), " overlaps ", DescribeRange(e.start, e.count),
                     " of ", e.owner, " (line ", e.line + 1,
                     "): each user's fakeroot ids must be theirs alone; fix one of the entries"));
  }
  return absl::OkStatus();
}

}  // namespace berth::subid
