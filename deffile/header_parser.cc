// The definition file header: `Key: value` lines (deffile.go doHeader).
#include <algorithm>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "deffile/stage_parser.h"

namespace berth::deffile::internal {
// formats.md §5.1; otherurl<N> is matched apart.
constexpr absl::string_view kHeaderKeys[] = {
    "bootstrap", "from",    "includecmd", "mirrorurl",   "updateurl", "osversion",
    "include",   "library", "registry",   "namespace",   "stage",     "product",
    "user",      "regcode", "productpgp", "registerurl", "modules",   "fingerprints",
    "confurl",   "setopt",  "target",     "frontend",    "filename",  "buildargs"};

bool ValidKey(absl::string_view key) {
  if (std::find(std::begin(kHeaderKeys), std::end(kHeaderKeys), key) != std::end(kHeaderKeys)) {
    return true;
  }
  // Apptainer rewrites a trailing run of digits to "&n" and looks up "otherurl&n".
  return absl::ConsumePrefix(&key, "otherurl") && !key.empty() &&
         std::all_of(key.begin(), key.end(), absl::ascii_isdigit);
}

namespace {

absl::Status HeaderError(const SourceMap& source, size_t offset, absl::string_view why) {
  return source.ErrorAt(offset, absl::StrCat("failed to parse deffile header: ", why));
}

// A value being continued with a trailing '\'.
struct Continuation {
  std::string key;
  std::string value;
  size_t offset = 0;  // of the line the key is on

  bool pending() const { return !key.empty(); }
};

absl::Status Unterminated(const SourceMap& source, const Continuation& c) {
  return HeaderError(source, c.offset,
                     absl::StrCat("unterminated continuation: the value of ", GoQuote(c.key),
                                  " ends in '\\' but no header line continues it"));
}

}  // namespace

absl::Status ParseHeader(std::span<const Line> lines, const SourceMap& source, Header& header) {
  Continuation cont;
  for (const Line& line : lines) {
    absl::string_view text = TrimSpace(line.text);
    if (text.empty() || text.front() == '#') {
      // Apptainer panics here (a write to a nil map) when a value is pending.
      if (cont.pending()) return Unterminated(source, cont);
      continue;
    }
    absl::string_view cut = text.substr(0, text.find('#'));  // a URL fragment goes too
    std::string key, value;
    size_t key_offset = line.offset;
    if (cont.value.empty()) {
      // As Apptainer: an empty continued value does not continue anything.
      size_t colon = cut.find(':');
      if (colon == absl::string_view::npos) {
        return HeaderError(source, line.offset,
                           absl::StrCat("header key ", Printable(cut), " had no val"));
      }
      key = AsciiLower(TrimSpace(cut.substr(0, colon)));
      value = std::string(TrimSpace(cut.substr(colon + 1)));
    } else {
      key = std::move(cont.key);
      value = absl::StrCat(cont.value, TrimSpace(cut));
      key_offset = cont.offset;
      cont = Continuation();
    }
    if (absl::EndsWith(value, "\\")) {
      value.pop_back();
      // "\n\" at the end of a line puts a newline in the value.
      if (absl::EndsWith(value, "\\n")) value.replace(value.size() - 2, 2, "\n");
      cont = Continuation{std::move(key), std::move(value), key_offset};
      continue;
    }
    if (!ValidKey(key)) {
      return HeaderError(source, key_offset,
                         absl::StrCat("invalid header keyword found: ", Printable(key)));
    }
    header.Set(std::move(key), std::move(value), source.LineOf(key_offset));
  }
  // Apptainer drops the key silently here.
  if (cont.pending()) return Unterminated(source, cont);
  return absl::OkStatus();
}

}  // namespace berth::deffile::internal
