// The byte range libsquashfs reads an image through, and the checks made on a
// super block before any table it names is loaded.
//
// A squashfs inside a SIF is the window [offset, offset + size) of the SIF
// file. libsquashfs reads through a sqfs_file_t. RangeFile is one that
// serves only that window, read-only, and remembers why a read failed. Every
// byte behind it is hostile: a read outside the window is an error, never a
// clamp. Internal to squashfs_reader.cc; split out to keep files small.
#pragma once

#include <sqfs/io.h>
#include <sqfs/super.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "absl/status/status.h"

namespace berth::inspect {

struct RangeFile {
  // First member: libsquashfs hands back this pointer and we cast it to the
  // enclosing struct.
  sqfs_file_t base;
  int fd;
  uint64_t offset;
  uint64_t size;
  // Why the last read failed; an error code alone would not say.
  std::string* last_error;
};
static_assert(std::is_standard_layout_v<RangeFile>);

// Makes `file` a read-only window on `fd`. The caller owns `file` and `fd`,
// and libsquashfs never frees the window.
void InitRangeFile(RangeFile& file, int fd, uint64_t offset, uint64_t size,
                   std::string* last_error);

// A libsquashfs error code in words.
std::string SqfsErrorText(int code);

// The tables libsquashfs will read must lie inside the `available` bytes, in
// the order mksquashfs writes them, and the fragment table must be of sane
// size. DataLoss naming the first problem otherwise.
absl::Status CheckSuperBlock(const sqfs_super_t& super, uint64_t available);

}  // namespace berth::inspect
