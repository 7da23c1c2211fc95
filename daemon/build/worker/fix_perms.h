// --fix-perms: after a base is unpacked, its owner may read, write and
// search everything in it (directories u+rwx, files u+rw, and u+x where any
// execute bit is set), as Apptainer's --fix-perms does for OCI sources, so
// a later %post, `rm -rf` of a sandbox or a rebuild never meets a tree the
// user cannot delete. Runs in the worker, with the build's fakeroot rights;
// symbolic links are never followed.
#pragma once

#include "absl/status/status.h"

namespace berth::build_worker {

absl::Status FixPermissions(int root_fd);

}  // namespace berth::build_worker
