// The ABI rules for replacing an image's MPI library with the host's, as
// Sarus defines them (compared from the file names' versions):
//   major   the majors are equal (same soname): compatible.
//   full    the majors are equal and the host's minor is at least the
//           image's; a newer image minor is compatible with a warning (the
//           application may use something the host lacks).
//   strict  major and minor are equal.
// An unknown rule name is refused when the stack is loaded, never taken for
// a default. Pure: a verdict from two names and a rule.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "mpi/library_name.h"

namespace berth::mpi {

enum class AbiRule { kMajor, kFull, kStrict };

absl::StatusOr<AbiRule> ParseAbiRule(absl::string_view name);
const char* AbiRuleName(AbiRule rule);

struct AbiVerdict {
  enum Kind { kCompatible, kWarning, kIncompatible };
  Kind kind = kCompatible;
  // Why, in one line naming both libraries and the rule: "libmpich.so.12.2.0
  // (host) and libmpich.so.12.1.10 (image): same major 12 (rule major)".
  std::string reason;
};

// May the image's `image` library be replaced by the host's `host`? The two
// must have the same linker name (the caller pairs them).
AbiVerdict CheckAbi(const LibraryName& host, const LibraryName& image, AbiRule rule);

}  // namespace berth::mpi
