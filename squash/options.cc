#include "squash/options.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace berth::squash {

absl::StatusOr<Compressor> ParseCompressor(absl::string_view name) {
  if (name == "gzip") return Compressor::kGzip;
  if (name == "zstd") return Compressor::kZstd;
  if (name == "lz4") return Compressor::kLz4;
  if (name == "xz") return Compressor::kXz;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown compressor \"", absl::CEscape(name), "\" (use gzip, zstd, lz4 or xz)"));
}

const char* CompressorName(Compressor c) {
  switch (c) {
    case Compressor::kGzip:
      return "gzip";
    case Compressor::kZstd:
      return "zstd";
    case Compressor::kLz4:
      return "lz4";
    case Compressor::kXz:
      return "xz";
  }
  return "?";
}

int MaxLevel(Compressor c) {
  switch (c) {
    case Compressor::kGzip:
    case Compressor::kXz:
      return 9;
    case Compressor::kZstd:
      return 22;
    case Compressor::kLz4:
      return 0;
  }
  return 0;
}

absl::Status CheckOptions(const Options& o) {
  int max = MaxLevel(o.compressor);
  if (o.level < 0 || o.level > max) {
    return absl::InvalidArgumentError(
        max == 0 ? absl::StrCat(CompressorName(o.compressor), " has no compression levels")
                 : absl::StrCat("compression level ", o.level, " is out of range for ",
                                CompressorName(o.compressor), " (1-", max, ")"));
  }
  bool power_of_two = o.block_size != 0 && (o.block_size & (o.block_size - 1)) == 0;
  if (!power_of_two || o.block_size < 4096 || o.block_size > (1u << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("block size ", o.block_size, " must be a power of two from 4096 to 1048576"));
  }
  return absl::OkStatus();
}

}  // namespace berth::squash
