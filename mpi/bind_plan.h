// The decision of what a stack puts into a container: which of the image's
// libraries the host's replace (in place, at the image's own path), which
// are added (beside the image's libc, in a directory its loader searches by
// default), which directories are bound, and whether to refuse (ABI, MPI
// family, glibc). Pure: the host's resolved libraries and a view of the
// image in, a plan out; finding them (loader caches, ELF reads, the image's
// directories) is the caller's (daemon/service/mpi_run.h), so this is
// tested with tables and no root.
//
// Why in place, not a library directory prepended to LD_LIBRARY_PATH (as
// Apptainer's bind model does): the application then finds the host's
// library by the image's own means (its loader cache, its RPATH, a cleared
// environment, a setuid helper that ignores LD_LIBRARY_PATH), and nothing
// else in the container inherits a search path that pulls host libraries
// into the image's own tools. What the image lacks is added where its
// libc is, a directory its loader always searches. docs/mpi.md.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "mpi/abi.h"
#include "mpi/elf_info.h"
#include "mpi/library_name.h"
#include "mpi/stack.h"

namespace berth::mpi {

struct HostLibrary {
  std::string soname;  // what the stack or a DT_NEEDED named: "libmpich.so.12"
  std::string path;    // the host file the loader cache gives
  LibraryName name;    // of the real file, symlinks resolved: libmpich.so.12.2.0
  ElfInfo elf;
  bool checked = false;  // one of the stack's `libraries` (ABI-checked)
};

struct ImageLibrary {
  std::string path;  // the real file in the container, symlinks resolved
  LibraryName name;  // of that file
};

struct ImageView {
  std::map<std::string, ImageLibrary> by_soname;  // every name in its library directories
  std::map<std::string, ImageLibrary> by_linker;  // "libmpich.so": the newest
  std::string libc_dir;                           // directory of its libc.so.6; empty: it has none
  GlibcVersion glibc;                             // the newest GLIBC_x.y its libc defines
};

struct FileBind {
  std::string host_path;
  std::string container_path;
  bool replaces = false;  // over the image's own file (else a new entry)
};

struct BindPlan {
  MpiFamily image_family = MpiFamily::kNone;
  std::string image_mpi;  // the image's MPI library file, e.g. libmpi.so.40.30.4
  MpiFamily host_family = MpiFamily::kNone;
  std::string host_mpi;
  std::vector<AbiVerdict> verdicts;
  std::vector<FileBind> files;
  std::vector<std::string> dirs;  // bound at the same path
  GlibcVersion image_glibc, host_glibc_needed;
  std::string glibc_needed_by;  // the host library needing the newest
  std::vector<std::string> warnings;
  std::string refusal;  // empty: the plan may be applied
};

// glibc's own libraries (libc, libm, libpthread, ld.so...): never bound from
// the host unless the image lacks one and has the host's very glibc.
bool IsGlibcLibrary(const std::string& soname);

BindPlan PlanStack(const Stack& stack, const std::vector<HostLibrary>& host, const ImageView& image,
                   GlibcVersion host_glibc);

}  // namespace berth::mpi
