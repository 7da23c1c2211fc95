// Helpers shared by the CDI source files (names, spec parsing).
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace berth::daemon::gpu {

absl::Status CheckCdiKind(absl::string_view kind);
absl::Status CheckCdiDeviceName(absl::string_view name);

}  // namespace berth::daemon::gpu
