// Reading one of the daemon's policy files (berth.conf, ecl.toml) safely.
//
// These files decide what every user on the node may do, so the system
// daemon reads them only when root owns them and nobody else can write them,
// never through a symlink, never from a FIFO that would park it, and never
// beyond 1 MiB. A missing file is not an error: the defaults apply.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace berth::daemon::policy {

// The contents of `path`, or nullopt when it does not exist.
absl::StatusOr<std::optional<std::string>> ReadPolicyFile(const std::string& path,
                                                          bool require_root_owned);

}  // namespace berth::daemon::policy
