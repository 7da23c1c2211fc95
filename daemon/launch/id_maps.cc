#include "daemon/launch/id_maps.h"

#include <limits>

#include "absl/strings/str_cat.h"

namespace berth::daemon::launch {
namespace {

constexpr uint64_t kIdLimit = std::numeric_limits<uint32_t>::max();  // (uid_t)-1
constexpr size_t kMaxLines = 8;                                      // a fakeroot map has two

bool Overlap(uint64_t a, uint64_t b, uint32_t count_a, uint32_t count_b) {
  return a < b + count_b && b < a + count_a;
}

absl::Status CheckLine(const IdMapping& m, uint32_t own_id, bool first, absl::string_view kind) {
  if (m.count == 0 || m.inside + uint64_t{m.count} > kIdLimit ||
      m.outside + uint64_t{m.count} > kIdLimit) {
    return absl::InvalidArgumentError(absl::StrCat(kind, " map line ", m.inside, " ", m.outside,
                                                   " ", m.count, " is empty or past the last id"));
  }
  if (first) return absl::OkStatus();
  std::string line = absl::StrCat(kind, " map line ", m.inside, " ", m.outside, " ", m.count);
  if (Overlap(m.outside, 0, m.count, 1)) {
    return absl::PermissionDeniedError(
        absl::StrCat(line, " would map host ", kind, " 0 (root): refused"));
  }
  if (Overlap(m.outside, own_id, m.count, 1)) {
    return absl::PermissionDeniedError(absl::StrCat(line, " would map the caller's own ", kind, " ",
                                                    own_id, " a second time: refused"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> IdMapText(const std::vector<IdMapping>& requested, uint32_t inside,
                                      uint32_t own_id, absl::string_view kind) {
  if (requested.empty()) return absl::StrCat(inside, " ", own_id, " 1\n");
  if (requested.size() > kMaxLines || requested[0].inside != inside ||
      requested[0].outside != own_id || requested[0].count != 1) {
    return absl::InvalidArgumentError(absl::StrCat(kind, " map must start with \"", inside, " ",
                                                   own_id, " 1\" and have at most ", kMaxLines,
                                                   " lines"));
  }
  std::string text;
  for (size_t i = 0; i < requested.size(); ++i) {
    const IdMapping& m = requested[i];
    if (absl::Status s = CheckLine(m, own_id, i == 0, kind); !s.ok()) return s;
    for (size_t j = 0; j < i; ++j) {
      const IdMapping& o = requested[j];
      if (Overlap(m.inside, o.inside, m.count, o.count) ||
          Overlap(m.outside, o.outside, m.count, o.count)) {
        return absl::InvalidArgumentError(
            absl::StrCat(kind, " map lines ", j + 1, " and ", i + 1, " overlap"));
      }
    }
    absl::StrAppend(&text, m.inside, " ", m.outside, " ", m.count, "\n");
  }
  return text;
}

}  // namespace berth::daemon::launch
