#include "oras/auth_challenge.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace berth::oras {
namespace {

bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

void SkipSpaces(const std::string& s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
}

}  // namespace

absl::StatusOr<Challenge> ParseChallenge(const std::string& header) {
  auto bad = [&](const char* why) {
    return absl::InvalidArgumentError(
        absl::StrCat("unreadable WWW-Authenticate header (", why, ")"));
  };
  if (header.size() > 8192) return bad("too long");
  Challenge c;
  size_t i = 0;
  SkipSpaces(header, i);
  size_t start = i;
  while (i < header.size() && IsTokenChar(header[i])) ++i;
  if (i == start) return bad("no scheme");
  c.scheme = absl::AsciiStrToLower(header.substr(start, i - start));
  while (i < header.size()) {
    SkipSpaces(header, i);
    if (i < header.size() && header[i] == ',') {
      ++i;
      continue;
    }
    if (i >= header.size()) break;
    size_t name_start = i;
    while (i < header.size() && IsTokenChar(header[i])) ++i;
    if (i == name_start) return bad("bad parameter");
    std::string name = absl::AsciiStrToLower(header.substr(name_start, i - name_start));
    SkipSpaces(header, i);
    if (i >= header.size() || header[i] != '=') {
      break;  // a second challenge ("Basic realm=…, Bearer …") or a token68: stop here
    }
    ++i;
    SkipSpaces(header, i);
    std::string value;
    if (i < header.size() && header[i] == '"') {
      ++i;
      bool closed = false;
      while (i < header.size()) {
        char ch = header[i++];
        if (ch == '\\' && i < header.size()) {
          value.push_back(header[i++]);
        } else if (ch == '"') {
          closed = true;
          break;
        } else {
          value.push_back(ch);
        }
      }
      if (!closed) return bad("unterminated quote");
    } else {
      size_t v = i;
      while (i < header.size() && header[i] != ',' && header[i] != ' ') ++i;
      value = header.substr(v, i - v);
    }
    // Repeated scope parameters accumulate, space-separated (RFC 6749 style).
    auto [it, inserted] = c.params.emplace(name, value);
    if (!inserted && name == "scope") it->second += " " + value;
  }
  return c;
}

}  // namespace berth::oras
