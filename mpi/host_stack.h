// The host side of a stack: which files its libraries and dependencies are
// (through the host's loader cache, as ld.so would find them), what each
// needs, and the host's glibc. A host file bound into containers reaches
// every user who asks for the stack, so each must be root's and writable by
// nobody else; one that is not is refused, naming it.
//
// Privilege: none needed to read; the daemon calls it as root.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "mpi/bind_plan.h"
#include "mpi/stack.h"

namespace berth::mpi {

struct HostStack {
  std::vector<HostLibrary> libraries;  // the stack's libraries (checked), then dependencies
  GlibcVersion glibc;                  // the newest GLIBC_x.y the host's libc defines
};

// `ld_cache`: the host's loader cache file (/etc/ld.so.cache).
absl::StatusOr<HostStack> ReadHostStack(const Stack& stack, const std::string& ld_cache);

// Is the file at `fd` root's and writable by nobody else? Else an error
// naming `path`.
absl::Status CheckRootOnly(int fd, const std::string& path);

}  // namespace berth::mpi
