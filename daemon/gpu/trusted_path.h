// Whether something the daemon is about to trust can be changed by anyone
// but its administrator. A CDI spec tells the daemon which host devices and
// files to give a container and which programs to run as root (its hooks),
// so a spec, or a hook binary, that a user could edit would be a root shell
// for that user (the class of SingularityCE's PR #383: helpers only from
// absolute paths in root-owned configuration, never from the caller's PATH).
//
// Trusted means: the object and every directory above it belong to root (or,
// for a user-mode daemon, to its own user, whose privileges a spec can never
// exceed) and nobody else may write them. A sticky directory such as /tmp
// may be world-writable: only an entry's owner can rename or remove it there.
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"

namespace berth::daemon::gpu {

// Checks the object open at `fd` (any kind, O_PATH is enough) and, by the
// kernel's name for it, each of its ancestors. `display` names it in the
// error, which says how to fix it. `owner` is the one uid besides root that
// may own these (the user-mode daemon's user; 0 in system mode).
absl::Status CheckTrusted(int fd, const std::string& display, uid_t owner);

}  // namespace berth::daemon::gpu
