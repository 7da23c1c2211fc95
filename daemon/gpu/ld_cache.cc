#include "daemon/gpu/ld_cache.h"

#include <endian.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace berth::daemon::gpu {
namespace {

constexpr absl::string_view kNewMagic = "glibc-ld.so.cache1.1";
constexpr absl::string_view kOldMagic = "ld.so-1.7.0";
constexpr size_t kNewHeader = 48;
constexpr size_t kNewEntry = 24;
constexpr size_t kOldHeader = 16;  // magic[11], padding, nlibs
constexpr size_t kOldEntry = 12;
constexpr size_t kMaxString = 4096;
constexpr uint8_t kEndianMask = 3, kEndianBig = 3, kEndianInvalid = 1;

uint32_t U32(absl::string_view b, size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, sizeof v);
  return le32toh(v);
}

absl::Status Corrupt(absl::string_view why) {
  return absl::DataLossError(absl::StrCat("corrupt loader cache: ", why));
}

// Where the new-format header starts: at 0, or after the legacy table,
// aligned to 8 (the alignment of the new header's 64-bit fields).
absl::StatusOr<size_t> NewHeaderOffset(absl::string_view b) {
  if (absl::StartsWith(b, kNewMagic)) return 0;
  if (!absl::StartsWith(b, kOldMagic)) return Corrupt("unknown magic");
  if (b.size() < kOldHeader) return Corrupt("truncated legacy header");
  // 11 bytes of magic, padding to the 32-bit count at 12, then the entries.
  uint64_t old_end = kOldHeader + uint64_t{U32(b, 12)} * kOldEntry;
  uint64_t aligned = (old_end + 7) & ~uint64_t{7};
  if (aligned + kNewMagic.size() > b.size() || !absl::StartsWith(b.substr(aligned), kNewMagic)) {
    return Corrupt("legacy format without the glibc 1.1 table");
  }
  return static_cast<size_t>(aligned);
}

// The NUL-terminated string at `offset` (from the new header's start).
absl::StatusOr<std::string> StringAt(absl::string_view table, uint32_t offset) {
  if (offset >= table.size()) return Corrupt("string offset past the end");
  absl::string_view rest = table.substr(offset, kMaxString);
  size_t nul = rest.find('\0');
  if (nul == absl::string_view::npos) return Corrupt("unterminated or overlong string");
  return std::string(rest.substr(0, nul));
}

}  // namespace

absl::StatusOr<std::vector<LdCacheEntry>> ParseLdCache(absl::string_view bytes) {
  auto base = NewHeaderOffset(bytes);
  if (!base.ok()) return base.status();
  absl::string_view table = bytes.substr(*base);
  if (table.size() < kNewHeader) return Corrupt("truncated header");
  uint8_t endian = static_cast<uint8_t>(table[28]) & kEndianMask;
  if (endian == kEndianInvalid || endian == kEndianBig) {
    return Corrupt("written for a big-endian or unknown byte order");
  }
  uint64_t count = U32(table, 20);
  if (count > (table.size() - kNewHeader) / kNewEntry) return Corrupt("entry count past the end");
  std::vector<LdCacheEntry> entries;
  entries.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    size_t at = kNewHeader + i * kNewEntry;
    LdCacheEntry e;
    e.flags = static_cast<int32_t>(U32(table, at));
    auto name = StringAt(table, U32(table, at + 4));
    if (!name.ok()) return name.status();
    auto path = StringAt(table, U32(table, at + 8));
    if (!path.ok()) return path.status();
    e.name = *std::move(name);
    e.path = *std::move(path);
    entries.push_back(std::move(e));
  }
  return entries;
}

}  // namespace berth::daemon::gpu
