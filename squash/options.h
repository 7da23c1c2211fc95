// How a squashfs image is written: compressor, level, block size, and the
// threads and memory the block processor may use.
//
// The compressor names are mksquashfs's (gzip, zstd, lz4, xz). A zstd image
// needs Linux >= 4.14 to mount with the kernel's driver; gzip is readable by
// every kernel (docs/config.md, build_compression).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::squash {

enum class Compressor { kGzip, kZstd, kLz4, kXz };

// "gzip", "zstd", "lz4" or "xz"; anything else is refused with the list.
absl::StatusOr<Compressor> ParseCompressor(absl::string_view name);
const char* CompressorName(Compressor c);
// The highest level mksquashfs accepts for `c` (0: no levels, lz4).
int MaxLevel(Compressor c);

inline constexpr uint32_t kDefaultBlockSize = 128 * 1024;  // mksquashfs's default

struct Options {
  Compressor compressor = Compressor::kGzip;
  int level = 0;  // 0: the compressor's default (mksquashfs's)
  uint32_t block_size = kDefaultBlockSize;
  // Worker threads compressing blocks; 0: one per CPU this process may use.
  unsigned threads = 0;
  // Bytes of blocks queued for compression at most (0: 10 per thread), and
  // never more than a quarter of the cgroup's memory limit; the block
  // processor holds about twice this.
  int64_t max_queued_bytes = 0;
  // The image's creation time and the default mtime of generated
  // directories; -1 = now.
  int64_t timestamp = -1;
};

// Checks level and block size against the compressor, as mksquashfs does.
absl::Status CheckOptions(const Options& options);

// Where the image goes: `fd` from byte `offset` on (pread/pwrite only).
struct Target {
  int fd = -1;
  int64_t offset = 0;
};

}  // namespace berth::squash
