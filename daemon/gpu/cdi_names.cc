// The CDI name rules (SPEC.md "Kind", "Device name"): a vendor and a class
// start with a letter, end with a letter or digit and hold letters, digits,
// '_', '-' and '.'; a device name starts and ends with a letter or digit and
// may also hold ':'.
#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "daemon/gpu/cdi_internal.h"
#include "daemon/gpu/cdi_spec.h"

namespace berth::daemon::gpu {
namespace {

constexpr size_t kMaxNameBytes = 253;

bool ValidPart(absl::string_view s, bool name) {
  if (s.empty() || s.size() > kMaxNameBytes) return false;
  bool first_ok = name ? absl::ascii_isalnum(s.front()) : absl::ascii_isalpha(s.front());
  if (!first_ok || !absl::ascii_isalnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [name](char c) {
    return absl::ascii_isalnum(c) || c == '_' || c == '-' || c == '.' || (name && c == ':');
  });
}

}  // namespace

absl::Status CheckCdiKind(absl::string_view kind) {
  size_t slash = kind.find('/');
  if (slash == absl::string_view::npos || !ValidPart(kind.substr(0, slash), false) ||
      !ValidPart(kind.substr(slash + 1), false)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kind '", absl::CHexEscape(kind.substr(0, 128)),
        "' is not vendor.com/class (letters, digits, '_', '-', '.'; starting with a letter)"));
  }
  return absl::OkStatus();
}

absl::Status CheckCdiDeviceName(absl::string_view name) {
  if (!ValidPart(name, true)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "device name '", absl::CHexEscape(name.substr(0, 128)),
        "' is not valid (letters, digits, '_', '-', '.', ':'; starting and ending with a letter or "
        "digit)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<CdiName> ParseCdiName(absl::string_view qualified) {
  size_t eq = qualified.find('=');
  if (eq == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("CDI device '", absl::CHexEscape(qualified.substr(0, 128)),
                     "': not a qualified name (vendor.com/class=name)"));
  }
  CdiName out{std::string(qualified.substr(0, eq)), std::string(qualified.substr(eq + 1))};
  absl::Status st = CheckCdiKind(out.kind);
  if (st.ok()) st = CheckCdiDeviceName(out.name);
  if (!st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CDI device '", absl::CHexEscape(qualified.substr(0, 128)), "': ", st.message()));
  }
  return out;
}

}  // namespace berth::daemon::gpu
