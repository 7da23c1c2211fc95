// Shared library file names and the versions they carry
// ("libmpich.so.12.2.0": linker name libmpich.so, version 12.2.0, soname
// libmpich.so.12), the only version information MPI libraries reliably
// carry, and what the ABI rules (abi.h) compare. Pure string work.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace berth::mpi {

struct LibraryName {
  std::string linker_name;   // "libmpich.so"
  std::vector<int> version;  // {12, 2, 0}; empty for an unversioned name
  std::string file_name;     // as given

  // "libmpich.so.12": the linker name and the major version.
  std::string Soname() const;
  // "12.2.0", or "" when unversioned.
  std::string VersionString() const;
};

// Parses a file name (no directory) of the form NAME.so[.N[.N...]]; nothing
// for anything else (a version part that is not a number, no ".so").
std::optional<LibraryName> ParseLibraryName(absl::string_view file_name);

// Which MPI a library implements, by its name: the MPICH ABI (libmpich.so.12
// and the libmpi.so.12 of Intel MPI and MVAPICH, which share it), Open MPI
// (libmpi.so.40 and its companions), or nothing.
enum class MpiFamily { kNone, kMpich, kOpenMpi };
MpiFamily FamilyOf(const LibraryName& name);
const char* FamilyName(MpiFamily family);

}  // namespace berth::mpi
