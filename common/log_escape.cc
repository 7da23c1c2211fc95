#include "common/log_escape.h"

#include <cstdint>

#include "absl/strings/str_format.h"

namespace berth {
namespace {

// The length of the well-formed UTF-8 sequence at `s` (2..4) and its code
// point, or 0 when the bytes there are not one (overlong forms and
// surrogates included).
size_t DecodeUtf8(std::string_view s, char32_t& out) {
  auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  uint8_t lead = byte(0);
  size_t len = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 0;
  if (len == 0 || lead > 0xf4 || s.size() < len) return 0;
  char32_t cp = lead & (0x7f >> len);
  for (size_t i = 1; i < len; ++i) {
    if ((byte(i) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i) & 0x3f);
  }
  static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  out = cp;
  return len;
}

// Characters that move or reorder text: C1 controls, the line and paragraph
// separators, and the bidirectional embeddings, overrides and isolates.
bool IsHiddenControl(char32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
         (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e ||
         cp == 0x200f || cp == 0x061c;
}

void AppendAsciiEscape(std::string& out, char c) {
  switch (c) {
    case '\n':
      out += "\\n";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\t':
      out += "\\t";
      return;
    case '\x1b':
      out += "\\e";
      return;
    case '\\':
      out += "\\\\";
      return;
    default:
      absl::StrAppendFormat(&out, "\\x%02x", static_cast<uint8_t>(c));
  }
}

}  // namespace

std::string EscapeForLog(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    auto c = static_cast<uint8_t>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += text[i++];
      continue;
    }
    if (c < 0x80) {
      AppendAsciiEscape(out, text[i++]);
      continue;
    }
    char32_t cp = 0;
    size_t len = DecodeUtf8(text.substr(i), cp);
    if (len == 0) {
      absl::StrAppendFormat(&out, "\\x%02x", c);
      ++i;
    } else if (IsHiddenControl(cp)) {
      absl::StrAppendFormat(&out, "\\u{%04x}", static_cast<uint32_t>(cp));
      i += len;
    } else {
      out.append(text.substr(i, len));
      i += len;
    }
  }
  return out;
}

}  // namespace berth
