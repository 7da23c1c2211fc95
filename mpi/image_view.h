// The image side of a stack: the shared libraries an image holds in the
// directories its loader searches (the multiarch and lib64 directories and
// those its own /etc/ld.so.cache names), each with the real file its name
// resolves to, and its libc's directory and glibc version. That is what
// the bind plan pairs the host's libraries with.
//
// The image is hostile: every path is resolved with RESOLVE_IN_ROOT below
// the image's root (a symlink to /etc/shadow means the image's own), magic
// links are refused, the loader cache is parsed with bounds checks, and the
// number of entries read is capped.
//
// Privilege: reads the mounted image as the daemon (root); opens nothing
// for writing.
#pragma once

#include "absl/status/statusor.h"
#include "mpi/bind_plan.h"

namespace berth::mpi {

// `root_fd`: the image's root directory (any open descriptor of it).
absl::StatusOr<ImageView> ReadImageView(int root_fd);

}  // namespace berth::mpi
