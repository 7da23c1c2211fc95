// `berth config fakeroot --add|--remove|--enable|--disable USER` on the text
// of one subuid or subgid file, as Apptainer's config_fakeroot does:
//   add      nothing when the user already has an entry the range rules
//            accept (range_choice.h; a disabled one included); otherwise
//            appends "UID:START:65536" with the highest free START, trying
//            4294836224 (2^32 - 131072) downwards in steps of 65536 to 65536;
//   remove   deletes the entry the rules pick;
//   enable   drops the '!' of that entry;
//   disable  prefixes it with '!'.
// Deliberate differences: every other line stays byte for byte (Apptainer
// rewrites the file and drops lines of fewer than three fields), and a
// candidate range must not overlap any entry at all (Apptainer only checks
// that its first id is free, so it can hand out ids another entry holds).
//
// Pure: the caller reads and replaces the files (subid_io.h).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "subid/subid_file.h"

namespace berth::subid {

enum class EditOp { kAdd, kRemove, kEnable, kDisable };

// The file's new text (the same text when there is nothing to change).
// Errors are Apptainer's: "no mapping entry found in FILE for USER", the
// too-small message, "no range available".
absl::StatusOr<std::string> EditFile(absl::string_view text, EditOp op, const User& user,
                                     absl::string_view path);

}  // namespace berth::subid
