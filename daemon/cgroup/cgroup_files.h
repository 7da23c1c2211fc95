// Reading and writing one cgroup interface file, with the errno that
// matters kept in the status code: ENOENT and ESRCH -> NotFound (no such
// file / the process exited), EBUSY -> FailedPrecondition (cgroup v2's
// no-internal-process rule), EACCES/EPERM -> PermissionDenied.
//
// A value is written with one write(2) and must be one line without NUL:
// cgroup files act on each write, so a newline could smuggle a second.
// Privilege: the caller's (the daemon's).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::daemon::cgroup {

absl::StatusOr<std::string> ReadCgroupFile(const std::string& path);
absl::Status WriteCgroupFile(const std::string& path, absl::string_view value);

}  // namespace berth::daemon::cgroup
