#include "client/inspect/squashfs_window.h"

#include <sqfs/error.h>

#include <limits>
#include <span>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_io.h"

namespace berth::inspect {
namespace {

// The fragment table is loaded whole; 64 MiB is 4 Mi fragments, several TB of
// small files at the default block size.
constexpr uint64_t kMaxFragmentTableBytes = 64 << 20;
constexpr uint64_t kOnDiskSuperBlockSize = 96;
constexpr uint64_t kTableAbsent = std::numeric_limits<uint64_t>::max();

int ReadAt(sqfs_file_t* file, sqfs_u64 offset, void* buffer, size_t size) {
  auto* part = reinterpret_cast<RangeFile*>(file);
  if (offset > part->size || size > part->size - offset) {
    *part->last_error = absl::StrFormat("read of %d bytes at offset %d is beyond its %d bytes",
                                        size, offset, part->size);
    return SQFS_ERROR_OUT_OF_BOUNDS;
  }
  absl::Status st = PreadFull(part->fd, std::span(static_cast<uint8_t*>(buffer), size),
                              static_cast<int64_t>(part->offset + offset));
  if (!st.ok()) {
    *part->last_error = std::string(st.message());
    return SQFS_ERROR_IO;
  }
  return 0;
}

int RefuseWrite(sqfs_file_t*, sqfs_u64, const void*, size_t) {
  return SQFS_ERROR_UNSUPPORTED;
}
int RefuseTruncate(sqfs_file_t*, sqfs_u64) {
  return SQFS_ERROR_UNSUPPORTED;
}
sqfs_u64 GetSize(const sqfs_file_t* file) {
  return reinterpret_cast<const RangeFile*>(file)->size;
}
// The reader owns the window; nothing may free it behind our back.
void DestroyNothing(sqfs_object_t*) {}

}  // namespace

void InitRangeFile(RangeFile& file, int fd, uint64_t offset, uint64_t size,
                   std::string* last_error) {
  file.base.base.destroy = DestroyNothing;
  file.base.base.copy = nullptr;
  file.base.read_at = ReadAt;
  file.base.write_at = RefuseWrite;
  file.base.get_size = GetSize;
  file.base.truncate = RefuseTruncate;
  file.fd = fd;
  file.offset = offset;
  file.size = size;
  file.last_error = last_error;
}

std::string SqfsErrorText(int code) {
  switch (code) {
    case SQFS_ERROR_ALLOC:
      return "out of memory";
    case SQFS_ERROR_IO:
      return "I/O error";
    case SQFS_ERROR_COMPRESSOR:
      return "corrupt squashfs: a compressed block does not decompress";
    case SQFS_ERROR_CORRUPTED:
      return "corrupt squashfs data";
    case SQFS_ERROR_UNSUPPORTED:
      return "unsupported squashfs feature or compressor";
    case SQFS_ERROR_OVERFLOW:
      return "corrupt squashfs: a size or offset overflows";
    case SQFS_ERROR_OUT_OF_BOUNDS:
      return "corrupt squashfs: data lies outside the filesystem";
    case SFQS_ERROR_SUPER_MAGIC:
      return "not a squashfs filesystem (bad magic)";
    case SFQS_ERROR_SUPER_VERSION:
      return "unsupported squashfs version (berth reads 4.0)";
    case SQFS_ERROR_SUPER_BLOCK_SIZE:
      return "invalid block size in the super block";
    case SQFS_ERROR_NOT_DIR:
      return "not a directory";
    case SQFS_ERROR_NO_ENTRY:
      return "no such file or directory";
    case SQFS_ERROR_LINK_LOOP:
      return "too many levels of symbolic links";
    case SQFS_ERROR_NOT_FILE:
      return "not a regular file";
    default:
      return absl::StrCat("libsquashfs error ", code);
  }
}

// The tables libsquashfs will read must lie inside the bytes we have, in the
// order mksquashfs writes them, before any of them is loaded.
absl::Status CheckSuperBlock(const sqfs_super_t& s, uint64_t available) {
  if (s.bytes_used > available) {
    return absl::DataLossError(
        absl::StrFormat("the squashfs says it is %d bytes but only %d are there (truncated image?)",
                        s.bytes_used, available));
  }
  if (s.inode_table_start < kOnDiskSuperBlockSize ||
      s.inode_table_start >= s.directory_table_start || s.directory_table_start > s.bytes_used) {
    return absl::DataLossError("corrupt super block: inode and directory tables are out of place");
  }
  for (uint64_t start :
       {s.id_table_start, s.fragment_table_start, s.export_table_start, s.xattr_id_table_start}) {
    if (start == kTableAbsent) continue;
    if (start < s.directory_table_start || start >= s.bytes_used) {
      return absl::DataLossError("corrupt super block: a table starts outside the filesystem");
    }
  }
  if (s.id_table_start == kTableAbsent) {
    return absl::DataLossError("corrupt super block: no ID table");
  }
  if (s.fragment_entry_count > 0) {
    uint64_t table_bytes = uint64_t{s.fragment_entry_count} * 16;
    uint64_t index_bytes = (table_bytes + 8191) / 8192 * 8;
    if (s.fragment_table_start == kTableAbsent || table_bytes > kMaxFragmentTableBytes ||
        index_bytes > s.bytes_used - s.fragment_table_start) {
      return absl::DataLossError(
          absl::StrFormat("corrupt super block: a fragment table of %d entries does not fit",
                          s.fragment_entry_count));
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::inspect
