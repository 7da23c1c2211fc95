// The text berthd writes to a container's /proc/<pid>/uid_map and gid_map,
// and the rules that keep a root daemon from mapping what it must not.
//
// A launch maps either one id (the caller's, at `inside`: itself, or 0 with
// fakeroot) or, with fakeroot, the lines daemon/fakeroot chose from
// /etc/subuid and /etc/subgid. Whoever filled LaunchSpec, the launcher checks
// the lines again here: the first maps 0 to the caller; no other line may
// map the host's id 0 or the caller's id (which would let root inside act as
// the host's root, or reach the caller's files under a second inside id);
// lines may not overlap on either side, nor reach the invalid id 2^32-1.
//
// Pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/launch/launch.h"

namespace berth::daemon::launch {

// The map text for `requested` (empty: the single line "inside own_id 1").
// `kind` is "uid" or "gid", for messages.
absl::StatusOr<std::string> IdMapText(const std::vector<IdMapping>& requested, uint32_t inside,
                                      uint32_t own_id, absl::string_view kind);

}  // namespace berth::daemon::launch
