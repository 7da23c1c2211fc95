#include "subid/subid_file.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace berth::subid {
namespace {

// Go's strconv.ParseUint(s, 10, 32): ASCII digits only (no sign, no space),
// at most 2^32-1.
bool ParseDecimal32(absl::string_view s, uint32_t& out) {
  if (s.empty() || s.size() > 10) return false;
  uint64_t value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value > std::numeric_limits<uint32_t>::max()) return false;
  out = static_cast<uint32_t>(value);
  return true;
}

bool ParseEntry(absl::string_view line, Entry& e) {
  // bufio.ScanLines, which Apptainer reads with, drops a trailing '\r'.
  absl::ConsumeSuffix(&line, "\r");
  std::vector<absl::string_view> fields = absl::StrSplit(line, ':');
  if (fields.size() < 3) return false;
  absl::string_view owner = fields[0];
  e.disabled = absl::ConsumePrefix(&owner, "!");
  e.owner = std::string(owner);
  e.valid = !owner.empty() && ParseDecimal32(fields[1], e.start) &&
            ParseDecimal32(fields[2], e.count) && e.count > 0;
  return true;
}

}  // namespace

File Parse(absl::string_view text) {
  File file;
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (text.empty()) return file;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    Entry e;
    e.line = file.lines.size();
    if (ParseEntry(line, e)) file.entries.push_back(std::move(e));
    file.lines.emplace_back(line);
  }
  return file;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) absl::StrAppend(&out, line, "\n");
  return out;
}

bool OwnedBy(const Entry& entry, const User& user) {
  uint32_t uid;
  // A numeric owner is a uid, even when a user has that name (as in Apptainer).
  if (ParseDecimal32(entry.owner, uid)) return uid == user.uid;
  return !user.name.empty() && entry.owner == user.name;
}

std::string DisplayName(const User& user) {
  return user.name.empty() ? absl::StrCat(user.uid) : user.name;
}

std::string DescribeRange(uint32_t start, uint32_t count) {
  return absl::StrCat(start, "-", uint64_t{start} + count - 1);
}

}  // namespace berth::subid
