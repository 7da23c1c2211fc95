// From a parsed library list to the host files --nv (or --rocm) binds into
// a container, resolved beneath the driver root, the way Apptainer resolves
// nvliblist.conf (runtime-features.md §4):
//   - a library name matches, as a prefix, the names of the loader cache;
//     each name is taken once, for the first entry whose file is an ELF
//     object of the node's class and machine, and bound at
//     /.singularity.d/libs/<the file's name>;
//   - a library path is taken as is (same ELF check), and with it every
//     symlink of its directory whose name shares its stem up to ".so" and
//     that resolves to the same file;
//   - a binary is searched in a fixed directory list (never the client's
//     PATH: SCE PR #383) and bound at /usr/bin/<name>;
//   - another absolute path is bound at the same path.
// Entries that find nothing are skipped (a node without the OpenGL
// libraries still runs CUDA), and reported in `missing` for the log.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "daemon/gpu/driver_root.h"
#include "daemon/gpu/elf_ident.h"
#include "daemon/gpu/ld_cache.h"
#include "daemon/gpu/liblist.h"

namespace berth::daemon::gpu {

inline constexpr char kLibsDir[] = "/.singularity.d/libs";

struct DriverFile {
  std::string host_path;    // as shown in messages (DriverRoot::Display)
  std::string destination;  // absolute, in the container
  UniqueFd fd;              // the resolved file, held open
};

struct DriverFiles {
  std::vector<DriverFile> libraries;  // destinations in kLibsDir
  UniqueFd libs_tree;                 // `libraries` as one detached tree (libs_tree.h), if built
  std::vector<DriverFile> files;      // binaries and other files
  std::vector<std::string> missing;   // list entries that found nothing
};

DriverFiles ResolveDriverFiles(const std::vector<LibListEntry>& list,
                               const std::vector<LdCacheEntry>& cache, const DriverRoot& root,
                               const ElfIdent& native);

}  // namespace berth::daemon::gpu
