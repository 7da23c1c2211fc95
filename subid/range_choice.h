// Which subordinate range a user's fakeroot gets, by Apptainer's rules, and
// whether that range is safe for a root daemon to map.
//
// Choice (Apptainer's GetUserEntry + GetIDRange), among the user's entries
// whose numbers parse, disabled ones included:
//   1. the first entry of exactly 65536 ids;
//   2. otherwise the entry with the largest count above 65536 (the first of
//      equals);
//   3. otherwise, if the user has smaller entries only: "mapping entries for
//      user X found in FILE but all with a range count lower than 65536";
//   4. otherwise there is no entry (the caller falls back to the
//      root-mapped single-id namespace).
// A chosen entry marked '!' is "your fakeroot mapping has been disabled by
// the administrator".
//
// Safety (berth's own, because berthd writes the maps as root where
// Apptainer's setuid newuidmap would have applied its checks): the range must
// fit below the invalid id 2^32-1, must not contain id 0 (the host's root),
// nor the user's own id (already mapped to root inside), nor overlap another
// owner's entry in the same file (two users sharing host ids could reach each
// other's files). Each is refused with a message naming the file, the range
// and the fix.
//
// Pure functions over a parsed File.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "subid/subid_file.h"

namespace berth::subid {

// The entry the rules pick (disabled or not), nullptr when the user has
// none; the too-small case is an error. `path` names the file in messages.
absl::StatusOr<const Entry*> FindUserEntry(const File& file, const User& user,
                                           absl::string_view path);

struct Range {
  uint32_t start = 0;
  uint32_t count = 0;
};

// The user's usable range, std::nullopt when the file lists none for them.
absl::StatusOr<std::optional<Range>> ChooseRange(const File& file, const User& user,
                                                 absl::string_view path);

// Refuses a range no root daemon should map for `user`: past the last valid
// id, containing 0 or `own_id` (the user's uid, or primary gid for the
// subgid file), or overlapping another owner's entry of `file`. `kind` is
// "uid" or "gid", for messages.
absl::Status CheckRangeIsSafe(const File& file, const User& user, Range range, uint32_t own_id,
                              absl::string_view path, absl::string_view kind);

}  // namespace berth::subid
