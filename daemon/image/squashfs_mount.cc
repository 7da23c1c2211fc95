#include "daemon/image/squashfs_mount.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::daemon::image {
namespace {

constexpr size_t kSuperblockSize = 96;
constexpr uint32_t kSquashfsMagic = 0x73717368;  // "hsqs" on disk

template <typename T>
T LittleEndianAt(const uint8_t* p) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(p[i]) << (8 * i);
  return v;
}

absl::Status CheckFields(const uint8_t* sb, int64_t offset, int64_t size) {
  if (LittleEndianAt<uint32_t>(sb) != kSquashfsMagic) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "no squashfs at partition offset %d: magic is \"%s\", want \"hsqs\"", offset,
        absl::CHexEscape(absl::string_view(reinterpret_cast<const char*>(sb), 4))));
  }
  const uint16_t major = LittleEndianAt<uint16_t>(sb + 28);
  const uint16_t minor = LittleEndianAt<uint16_t>(sb + 30);
  if (major != 4 || minor != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("squashfs version %d.%d is not supported (want 4.0)", major, minor));
  }
  const uint32_t block_size = LittleEndianAt<uint32_t>(sb + 12);
  const uint16_t block_log = LittleEndianAt<uint16_t>(sb + 22);
  if (block_log < 12 || block_log > 20 || block_size != (1u << block_log)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("squashfs block size %d is invalid", block_size));
  }
  const uint64_t bytes_used = LittleEndianAt<uint64_t>(sb + 40);
  if (bytes_used < kSuperblockSize || bytes_used > static_cast<uint64_t>(size)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "squashfs is truncated: it needs %d bytes but the partition holds %d", bytes_used, size));
  }
  return absl::OkStatus();
}

// The kernel explains mount failures through the fs context ("e squashfs:
// ..."); one line of it makes the error actionable.
std::string KernelMessages(int fs_fd) {
  std::string messages;
  char buf[512];
  for (;;) {
    ssize_t n = read(fs_fd, buf, sizeof(buf));
    if (n <= 0) break;
    absl::string_view line(buf, static_cast<size_t>(n));
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumePrefix(&line, "e ");
    absl::StrAppend(&messages, messages.empty() ? "" : "; ", line);
  }
  return messages;
}

absl::Status FsError(const char* step, int err, int fs_fd) {
  std::string kernel = KernelMessages(fs_fd);
  absl::Status status = ErrnoStatus(step, err);
  if (kernel.empty()) return status;
  return absl::Status(status.code(), absl::StrCat(status.message(), " (", kernel, ")"));
}

absl::StatusOr<UniqueFd> CreateSquashfsMount(const std::string& device) {
  UniqueFd fs(static_cast<int>(syscall(SYS_fsopen, "squashfs", FSOPEN_CLOEXEC)));
  if (!fs) return ErrnoStatus("fsopen squashfs", errno);
  if (syscall(SYS_fsconfig, fs.get(), FSCONFIG_SET_STRING, "source", device.c_str(), 0) != 0) {
    return FsError("fsconfig source", errno, fs.get());
  }
  if (syscall(SYS_fsconfig, fs.get(), FSCONFIG_SET_FLAG, "ro", nullptr, 0) != 0) {
    return FsError("fsconfig ro", errno, fs.get());
  }
  if (syscall(SYS_fsconfig, fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return FsError("creating squashfs superblock", errno, fs.get());
  }
  UniqueFd mnt(static_cast<int>(syscall(SYS_fsmount, fs.get(), FSMOUNT_CLOEXEC,
                                        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)));
  if (!mnt) return FsError("fsmount", errno, fs.get());
  return mnt;
}

}  // namespace

absl::Status CheckSquashfsSuperblock(int fd, int64_t offset, int64_t size) {
  if (size < static_cast<int64_t>(kSuperblockSize)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("partition of %d bytes is too small to hold a squashfs", size));
  }
  std::array<uint8_t, kSuperblockSize> sb;
  RETURN_IF_ERROR_CTX(PreadFull(fd, sb, offset), "reading squashfs superblock");
  return CheckFields(sb.data(), offset, size);
}

absl::StatusOr<ScopedMount> MountKernelSquashfs(const std::string& device,
                                                const std::string& target) {
  ASSIGN_OR_RETURN(UniqueFd mnt, CreateSquashfsMount(device));
  if (syscall(SYS_move_mount, mnt.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) !=
      0) {
    return ErrnoStatus(absl::StrCat("move_mount to ", target), errno);
  }
  return ScopedMount(target);
}

}  // namespace berth::daemon::image
