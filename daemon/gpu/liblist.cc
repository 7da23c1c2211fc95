#include "daemon/gpu/liblist.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace berth::daemon::gpu {
namespace {

constexpr size_t kMaxEntries = 4096;
constexpr size_t kMaxEntryBytes = 4095;

absl::Status Bad(const std::string& origin, int line, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(origin, ":", line, ": ", why));
}

bool HasDotDot(absl::string_view path) {
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") return true;
  }
  return false;
}

absl::Status CheckEntry(absl::string_view entry, const std::string& origin, int line) {
  if (entry.size() > kMaxEntryBytes) return Bad(origin, line, "entry longer than 4095 bytes");
  bool printable = std::all_of(entry.begin(), entry.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u != 0x7f;
  });
  if (!printable) {
    return Bad(origin, line,
               absl::StrCat("'", absl::CHexEscape(entry),
                            "' contains a space or control character (one entry per line)"));
  }
  if (entry.front() != '/' && absl::StrContains(entry, '/')) {
    return Bad(
        origin, line,
        absl::StrCat("'", entry, "' is a relative path (use a bare name or an absolute path)"));
  }
  if (HasDotDot(entry)) return Bad(origin, line, absl::StrCat("'", entry, "' contains '..'"));
  return absl::OkStatus();
}

LibListEntry::Kind KindOf(absl::string_view entry) {
  bool library = absl::StrContains(entry, ".so");
  bool absolute = entry.front() == '/';
  if (library) return absolute ? LibListEntry::kLibraryPath : LibListEntry::kLibraryName;
  return absolute ? LibListEntry::kFile : LibListEntry::kBinary;
}

}  // namespace

absl::StatusOr<std::vector<LibListEntry>> ParseLibList(absl::string_view text,
                                                       const std::string& origin) {
  std::vector<LibListEntry> entries;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    absl::string_view entry = absl::StripAsciiWhitespace(line);
    if (entry.empty() || entry.front() == '#') continue;
    if (absl::Status st = CheckEntry(entry, origin, line_number); !st.ok()) return st;
    if (entries.size() == kMaxEntries) return Bad(origin, line_number, "more than 4096 entries");
    entries.push_back({KindOf(entry), std::string(entry), line_number});
  }
  return entries;
}

}  // namespace berth::daemon::gpu
