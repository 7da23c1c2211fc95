#include "daemon/instance/instance_name.h"

#include <fnmatch.h>

#include "absl/strings/str_cat.h"

namespace berth::daemon::instance {
namespace {

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

}  // namespace

absl::Status CheckName(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("instance name is empty");
  if (name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("instance name is ", name.size(), " bytes; the most is ", kMaxNameBytes));
  }
  for (char c : name) {
    if (!NameChar(c)) {
      return absl::InvalidArgumentError(
          "instance name may only use letters, digits, '.', '_' and '-' (^[a-zA-Z0-9._-]+$)");
    }
  }
  if (name == "." || name == "..") {
    return absl::InvalidArgumentError("instance name may not be '.' or '..'");
  }
  return absl::OkStatus();
}

absl::Status CheckPattern(absl::string_view pattern) {
  if (pattern.size() > kMaxPatternBytes) {
    return absl::InvalidArgumentError(absl::StrCat("instance pattern is ", pattern.size(),
                                                   " bytes; the most is ", kMaxPatternBytes));
  }
  for (char c : pattern) {
    if (!NameChar(c) && c != '*' && c != '?' && c != '[' && c != ']' && c != '!') {
      return absl::InvalidArgumentError(
          "instance pattern may only use name characters and the glob characters * ? [ ] !");
    }
  }
  return absl::OkStatus();
}

bool NameMatches(const std::string& pattern, const std::string& name) {
  return pattern.empty() || ::fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

}  // namespace berth::daemon::instance
