// /etc/subuid and /etc/subgid (subuid(5)): each line "OWNER:START:COUNT"
// gives OWNER, a login name or a numeric uid, the host ids START to
// START+COUNT-1 to map in user namespaces (the subgid file is keyed by the
// user too). This module parses them the way Apptainer does, so that a site's
// files mean the same thing to berth: fields split on ':', at least three
// (more are ignored), decimal 32-bit numbers only, a count of 0 invalid, a
// leading '!' marks an entry the administrator disabled, a line with fewer
// than three fields is no entry at all. Lines are kept verbatim, so an
// editor (subid_edit.h) changes only the line it means to.
//
// Pure text functions: no file access, no name service lookups. Owners are
// compared with the caller's login name and uid as written (Apptainer
// resolves every name of the file through NSS; one lookup per entry would
// make a file of thousands of entries slow on an LDAP node).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace berth::subid {

// The size of range Apptainer prefers and `config fakeroot --add` allocates.
inline constexpr uint32_t kRangeCount = 65536;

struct Entry {
  size_t line = 0;        // index into File::lines
  std::string owner;      // without the '!' prefix
  bool disabled = false;  // the line starts with '!'
  bool valid = false;     // START and COUNT are decimal uint32, COUNT > 0
  uint32_t start = 0;
  uint32_t count = 0;
  // One past the last id, computed without wrapping.
  uint64_t end() const { return uint64_t{start} + count; }
};

struct File {
  std::vector<std::string> lines;  // each without its '\n' (a trailing '\r' kept)
  std::vector<Entry> entries;      // the lines with at least three fields
};

File Parse(absl::string_view text);

// The text of `lines`, each ended by '\n'.
std::string Join(const std::vector<std::string>& lines);

// Who an entry must name to be the user's: the login name, or the uid in decimal.
struct User {
  uint32_t uid = 0;
  std::string name;
};

bool OwnedBy(const Entry& entry, const User& user);

// The name for messages: the login name, else the uid.
std::string DisplayName(const User& user);

// "START-LAST", for messages.
std::string DescribeRange(uint32_t start, uint32_t count);

}  // namespace berth::subid
