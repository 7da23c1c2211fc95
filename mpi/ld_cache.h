// The dynamic loader's cache (/etc/ld.so.cache, glibc's "new" format since
// 2.32): which file each soname resolves to, as ld.so would find it. The
// host's cache decides which host files a stack's libraries are; an image's
// (hostile bytes) is parsed with the same bounds checks. Pure: bytes in,
// entries out.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::mpi {

struct LdCacheEntry {
  std::string soname;  // "libmpich.so.12"
  std::string path;    // "/lib/x86_64-linux-gnu/libmpich.so.12"
};

// The entries for this machine's architecture (x86-64 or aarch64 libc6
// libraries), in the cache's order (ld.so takes the first match).
absl::StatusOr<std::vector<LdCacheEntry>> ParseLdCache(absl::string_view bytes);

}  // namespace berth::mpi
