// The host's loader cache (/etc/ld.so.cache, written by ldconfig), read
// directly instead of running `ldconfig -p` as Apptainer does: the daemon
// runs no host helper it was not configured with, and a parse costs a
// fraction of a process start.
//
// glibc's format since 2.32 is "glibc-ld.so.cache1.1": a 48-byte header
// (entry count, string table length, endianness flags), 24-byte entries
// (flags, name offset, path offset, hwcap) and a string table; older files
// put it after a legacy "ld.so-1.7.0" table. String offsets count from the
// start of the new header. Every count and offset is checked against the
// file's size before use: the file is root's, but a corrupt one must give
// an error, never a crash.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::daemon::gpu {

struct LdCacheEntry {
  std::string name;   // "libcuda.so.1"
  std::string path;   // "/usr/lib/x86_64-linux-gnu/libcuda.so.1"
  int32_t flags = 0;  // FLAG_ELF_LIBC6 | FLAG_X8664_LIB64 ...
};

// The entries of a cache file's bytes, in file order.
absl::StatusOr<std::vector<LdCacheEntry>> ParseLdCache(absl::string_view bytes);

}  // namespace berth::daemon::gpu
