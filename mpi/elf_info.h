// What a shared library says about itself in its ELF dynamic sections: its
// soname, the libraries it needs (DT_NEEDED), and the glibc symbol versions
// it needs (GLIBC_2.x in .gnu.version_r) or, for a libc, defines (in
// .gnu.version_d). That is how the glibc guard compares a host stack with
// an image: host libraries needing GLIBC_2.34 cannot run on an image whose
// libc.so.6 defines versions only up to GLIBC_2.17.
//
// Image libraries are hostile bytes: every offset and count is checked
// against the file, sections are read with a size cap, and anything
// malformed is an error, never a read out of bounds. 64-bit little-endian
// ELF only (what berth runs on).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::mpi {

// A glibc symbol version, "GLIBC_2.34" as {2, 34}; ordered.
struct GlibcVersion {
  int major = 0;
  int minor = 0;
  bool operator<(const GlibcVersion& o) const {
    return major != o.major ? major < o.major : minor < o.minor;
  }
  bool operator==(const GlibcVersion& o) const { return major == o.major && minor == o.minor; }
  std::string ToString() const;  // "2.34"
};

struct ElfInfo {
  std::string soname;
  std::vector<std::string> needed;
  // The newest GLIBC_x.y it needs from any library, and the newest it
  // defines (a libc); {0, 0} when none.
  GlibcVersion glibc_needed;
  GlibcVersion glibc_defined;
};

// Reads the file open at `fd` (any ELF that is not 64-bit LE is an error).
absl::StatusOr<ElfInfo> ReadElfInfo(int fd);

// "GLIBC_2.34" -> {2, 34}; anything else (GLIBC_PRIVATE) -> {0, 0}.
GlibcVersion ParseGlibcVersion(absl::string_view name);

}  // namespace berth::mpi
