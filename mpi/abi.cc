#include "mpi/abi.h"

#include "absl/strings/str_cat.h"

namespace berth::mpi {
namespace {

// The version part at `i`, or 0 when the name has fewer parts (a library
// named only by its soname counts as x.0).
int Part(const LibraryName& n, size_t i) {
  return i < n.version.size() ? n.version[i] : 0;
}

std::string Pair(const LibraryName& host, const LibraryName& image) {
  return absl::StrCat(host.file_name, " (host) and ", image.file_name, " (image)");
}

AbiVerdict Verdict(AbiVerdict::Kind kind, const LibraryName& host, const LibraryName& image,
                   absl::string_view why, AbiRule rule) {
  return {kind, absl::StrCat(Pair(host, image), ": ", why, " (rule ", AbiRuleName(rule), ")")};
}

}  // namespace

absl::StatusOr<AbiRule> ParseAbiRule(absl::string_view name) {
  if (name == "major") return AbiRule::kMajor;
  if (name == "full") return AbiRule::kFull;
  if (name == "strict") return AbiRule::kStrict;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown ABI rule '", name, "' (use major, full or strict)"));
}

const char* AbiRuleName(AbiRule rule) {
  switch (rule) {
    case AbiRule::kFull:
      return "full";
    case AbiRule::kStrict:
      return "strict";
    default:
      return "major";
  }
}

AbiVerdict CheckAbi(const LibraryName& host, const LibraryName& image, AbiRule rule) {
  using K = AbiVerdict::Kind;
  if (host.linker_name != image.linker_name) {
    return Verdict(K::kIncompatible, host, image, "different libraries", rule);
  }
  if (host.version.empty() || image.version.empty()) {
    return Verdict(K::kIncompatible, host, image, "no version to compare", rule);
  }
  int hmaj = Part(host, 0), imaj = Part(image, 0), hmin = Part(host, 1), imin = Part(image, 1);
  if (hmaj != imaj) {
    return Verdict(K::kIncompatible, host, image, absl::StrCat("major ", hmaj, " is not ", imaj),
                   rule);
  }
  if (rule == AbiRule::kMajor) {
    return Verdict(K::kCompatible, host, image, absl::StrCat("same major ", hmaj), rule);
  }
  if (rule == AbiRule::kStrict) {
    if (hmin != imin) {
      return Verdict(K::kIncompatible, host, image, absl::StrCat("minor ", hmin, " is not ", imin),
                     rule);
    }
    return Verdict(K::kCompatible, host, image, absl::StrCat("same ", hmaj, ".", hmin), rule);
  }
  if (hmin < imin) {
    return Verdict(K::kWarning, host, image,
                   absl::StrCat("the image's minor ", imin, " is newer than the host's ", hmin,
                                ": the application may need what the host lacks"),
                   rule);
  }
  return Verdict(K::kCompatible, host, image,
                 absl::StrCat("same major ", hmaj, ", host minor ", hmin, " >= ", imin), rule);
}

}  // namespace berth::mpi
