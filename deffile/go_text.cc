#include "deffile/go_text.h"

#include <cstdint>
#include <string_view>

#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "common/go_json.h"

namespace berth::deffile::internal {
namespace {

bool IsSpaceRune(uint32_t r) {
  switch (r) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return r >= 0x2000 && r <= 0x200A;
  }
}

// The rune starting at s[i] and its length; length 0 for invalid UTF-8.
size_t RuneAt(absl::string_view s, size_t i, uint32_t& rune) {
  auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    rune = c;
    return 1;
  }
  return DecodeUtf8Rune(std::string_view(s.data(), s.size()), i, rune);
}

}  // namespace

size_t SpaceAt(absl::string_view s, size_t i) {
  uint32_t rune = 0;
  size_t len = RuneAt(s, i, rune);
  return len != 0 && IsSpaceRune(rune) ? len : 0;
}

size_t SpaceBefore(absl::string_view s, size_t end) {
  if (end == 0) return 0;
  // As utf8.DecodeLastRuneInString: back to the nearest rune start (at most
  // four bytes), and the rune must end exactly at `end`.
  size_t start = end - 1;
  while (start > 0 && end - start < 4 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) {
    --start;
  }
  uint32_t rune = 0;
  size_t len = RuneAt(s, start, rune);
  if (len == 0 || start + len != end) return 0;
  return IsSpaceRune(rune) ? len : 0;
}

absl::string_view TrimSpace(absl::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    size_t len = SpaceAt(s, begin);
    if (len == 0) break;
    begin += len;
  }
  size_t end = s.size();
  while (end > begin) {
    size_t len = SpaceBefore(s.substr(0, end), end);
    if (len == 0) break;
    end -= len;
  }
  return s.substr(begin, end - begin);
}

absl::string_view FirstWord(absl::string_view line) {
  size_t begin = 0;
  while (begin < line.size()) {
    size_t len = SpaceAt(line, begin);
    if (len == 0) break;
    begin += len;
  }
  size_t end = begin;
  while (end < line.size() && SpaceAt(line, end) == 0) ++end;
  return line.substr(begin, end - begin);
}

std::vector<absl::string_view> Fields(absl::string_view s) {
  std::vector<absl::string_view> words;
  size_t i = 0;
  while (i < s.size()) {
    if (size_t len = SpaceAt(s, i); len != 0) {
      i += len;
      continue;
    }
    size_t begin = i;
    while (i < s.size() && SpaceAt(s, i) == 0) ++i;
    words.push_back(s.substr(begin, i - begin));
  }
  return words;
}

std::string AsciiLower(absl::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::vector<Line> SplitLines(absl::string_view text) {
  std::vector<Line> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    size_t end = nl == absl::string_view::npos ? text.size() : nl;
    absl::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back({start, line});
    if (nl == absl::string_view::npos) break;
    start = nl + 1;
  }
  return lines;
}

std::string GoQuote(absl::string_view s) {
  return berth::GoQuote(std::string_view(s.data(), s.size()));
}

std::string Printable(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace berth::deffile::internal
