#include "mpi/ld_cache.h"

#include <cstdint>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace berth::mpi {
namespace {

constexpr absl::string_view kMagic = "glibc-ld.so.cache1.1";
constexpr size_t kHeaderSize = 48;  // magic+version 20, nlibs, len_strings, flags 4, ext, unused 12
constexpr size_t kEntrySize = 24;   // flags, key, value, osversion, hwcap (8)
constexpr uint32_t kMaxEntries = 1 << 20;

// libc6 ELF libraries of this machine's ABI (glibc's FLAG_* values).
#if defined(__x86_64__)
constexpr int32_t kWantedFlags = 0x0303;  // FLAG_X8664_LIB64 | FLAG_ELF_LIBC6
#elif defined(__aarch64__)
constexpr int32_t kWantedFlags = 0x0a03;  // FLAG_AARCH64_LIB64 | FLAG_ELF_LIBC6
#else
constexpr int32_t kWantedFlags = -1;  // any
#endif

uint32_t U32(absl::string_view b, size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}

// The NUL-terminated string at `offset`, within the file.
absl::StatusOr<std::string> StringAt(absl::string_view b, uint32_t offset) {
  if (offset >= b.size()) return absl::InvalidArgumentError("string offset past the end");
  size_t end = b.find('\0', offset);
  if (end == absl::string_view::npos) return absl::InvalidArgumentError("unterminated string");
  return std::string(b.substr(offset, end - offset));
}

}  // namespace

absl::StatusOr<std::vector<LdCacheEntry>> ParseLdCache(absl::string_view b) {
  if (b.size() < kHeaderSize || !absl::StartsWith(b, kMagic)) {
    return absl::InvalidArgumentError("not a glibc 1.1 loader cache (ld.so.cache)");
  }
  uint32_t n = U32(b, 20);
  if (n > kMaxEntries || kHeaderSize + uint64_t{n} * kEntrySize > b.size()) {
    return absl::InvalidArgumentError(absl::StrCat("loader cache: ", n, " entries do not fit"));
  }
  std::vector<LdCacheEntry> out;
  for (uint32_t i = 0; i < n; ++i) {
    size_t at = kHeaderSize + size_t{i} * kEntrySize;
    int32_t flags = static_cast<int32_t>(U32(b, at));
    if (kWantedFlags != -1 && flags != kWantedFlags) continue;
    auto key = StringAt(b, U32(b, at + 4));
    auto value = StringAt(b, U32(b, at + 8));
    if (!key.ok() || !value.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("loader cache entry ", i, ": bad string"));
    }
    out.push_back({*std::move(key), *std::move(value)});
  }
  return out;
}

}  // namespace berth::mpi
