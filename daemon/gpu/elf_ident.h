// Which machine an ELF file is built for, so that --nv binds only libraries
// the container's programs can load: a 32-bit or foreign-architecture copy
// of libcuda in the loader cache would shadow the right one in
// /.singularity.d/libs (Apptainer filters on the machine; the class too is
// checked here, which tells x86-64 from x32).
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"

namespace berth::daemon::gpu {

struct ElfIdent {
  uint8_t elf_class = 0;  // ELFCLASS32 / ELFCLASS64
  uint8_t data = 0;       // ELFDATA2LSB / ELFDATA2MSB
  uint16_t machine = 0;   // EM_X86_64, EM_AARCH64, ...
  bool operator==(const ElfIdent&) const = default;
};

// Reads the identification of the ELF file open at `fd` (its first 20
// bytes, with pread). InvalidArgument when it is not ELF.
absl::StatusOr<ElfIdent> ReadElfIdent(int fd);

// The daemon's own (/proc/self/exe), read once: what the node runs.
absl::StatusOr<ElfIdent> NativeElfIdent();

}  // namespace berth::daemon::gpu
