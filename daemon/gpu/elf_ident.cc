#include "daemon/gpu/elf_ident.h"

#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::daemon::gpu {

absl::StatusOr<ElfIdent> ReadElfIdent(int fd) {
  unsigned char head[20];
  ssize_t n;
  do {
    n = ::pread(fd, head, sizeof head, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus("reading the ELF header", errno);
  if (n != sizeof head || std::memcmp(head, ELFMAG, SELFMAG) != 0) {
    return absl::InvalidArgumentError("not an ELF file");
  }
  ElfIdent id;
  id.elf_class = head[EI_CLASS];
  id.data = head[EI_DATA];
  if (id.data == ELFDATA2LSB) {
    id.machine = static_cast<uint16_t>(head[18] | (head[19] << 8));
  } else if (id.data == ELFDATA2MSB) {
    id.machine = static_cast<uint16_t>((head[18] << 8) | head[19]);
  } else {
    return absl::InvalidArgumentError("ELF file of unknown byte order");
  }
  return id;
}

absl::StatusOr<ElfIdent> NativeElfIdent() {
  static const absl::StatusOr<ElfIdent> native = []() -> absl::StatusOr<ElfIdent> {
    ASSIGN_OR_RETURN(UniqueFd self, OpenFile("/proc/self/exe", O_RDONLY));
    return ReadElfIdent(self.get());
  }();
  return native;
}

}  // namespace berth::daemon::gpu
