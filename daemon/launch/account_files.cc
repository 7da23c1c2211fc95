#include "daemon/launch/account_files.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/launch/mount_api.h"

namespace berth::daemon::launch {
namespace {

std::vector<absl::string_view> Lines(absl::string_view text) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

// Field `index` of a colon-separated line, or "" when it has fewer.
absl::string_view Field(absl::string_view line, size_t index) {
  std::vector<absl::string_view> fields = absl::StrSplit(line, ':');
  return index < fields.size() ? fields[index] : absl::string_view();
}

bool FieldIsNumber(absl::string_view line, size_t index, uint32_t value) {
  uint32_t parsed;
  return absl::SimpleAtoi(Field(line, index), &parsed) && parsed == value;
}

std::string AppendMember(absl::string_view line, absl::string_view user) {
  absl::string_view members = Field(line, 3);
  for (absl::string_view m : absl::StrSplit(members, ',', absl::SkipEmpty())) {
    if (m == user) return std::string(line);
  }
  return absl::StrCat(line, members.empty() ? "" : ",", user);
}

absl::Status CheckField(absl::string_view what, absl::string_view value) {
  if (value.find_first_of(":\n", 0) != absl::string_view::npos ||
      value.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", value, "' contains ':', a newline or a NUL byte"));
  }
  return absl::OkStatus();
}

bool HasId(absl::string_view file, size_t field, uint32_t id) {
  for (absl::string_view line : Lines(file)) {
    if (FieldIsNumber(line, field, id)) return true;
  }
  return false;
}

std::string WithLine(absl::string_view file, absl::string_view line) {
  std::string out(file);
  if (!out.empty() && out.back() != '\n') out += '\n';
  return absl::StrCat(out, line, "\n");
}

}  // namespace

std::string MergePasswd(absl::string_view image_passwd, const PasswdEntry& entry) {
  std::string out;
  for (absl::string_view line : Lines(image_passwd)) {
    if (Field(line, 0) == entry.name || FieldIsNumber(line, 2, entry.uid)) continue;
    absl::StrAppend(&out, line, "\n");
  }
  absl::StrAppend(&out, entry.name, ":x:", entry.uid, ":", entry.gid, ":", entry.gecos, ":",
                  entry.home, ":", entry.shell, "\n");
  return out;
}

std::string MergeGroup(absl::string_view image_group, absl::string_view user,
                       const std::vector<std::pair<gid_t, std::string>>& groups) {
  std::vector<std::string> lines;
  for (absl::string_view line : Lines(image_group)) lines.emplace_back(line);
  for (const auto& [gid, name] : groups) {
    bool done = false;
    for (std::string& line : lines) {
      if (FieldIsNumber(line, 2, gid)) {
        line = AppendMember(line, user);
        done = true;
        break;
      }
      if (Field(line, 0) == name) done = true;  // the image uses the name for another gid
    }
    if (!done && !name.empty()) lines.push_back(absl::StrCat(name, ":x:", gid, ":", user));
  }
  std::string out = absl::StrJoin(lines, "\n");
  if (!out.empty()) out += '\n';
  return out;
}

absl::StatusOr<AccountFiles> MakeAccountFiles(absl::string_view image_passwd,
                                              absl::string_view image_group,
                                              const Identity& identity, bool fakeroot) {
  if (fakeroot) {
    AccountFiles files{std::string(image_passwd), std::string(image_group)};
    if (!HasId(image_passwd, 2, 0))
      files.passwd = WithLine(image_passwd, "root:x:0:0:root:/root:/bin/sh");
    if (!HasId(image_group, 2, 0)) files.group = WithLine(image_group, "root:x:0:");
    return files;
  }
  RETURN_IF_ERROR(CheckField("user name", identity.user_name));
  RETURN_IF_ERROR(CheckField("gecos", identity.gecos));
  RETURN_IF_ERROR(CheckField("home", identity.home));
  RETURN_IF_ERROR(CheckField("shell", identity.shell));
  std::vector<std::pair<gid_t, std::string>> named;
  for (const auto& [gid, name] : identity.group_names) {
    RETURN_IF_ERROR(CheckField("group name", name));
    bool wanted = gid == identity.gid || std::find(identity.groups.begin(), identity.groups.end(),
                                                   gid) != identity.groups.end();
    if (wanted) named.emplace_back(gid, name);
  }
  std::string name =
      identity.user_name.empty() ? absl::StrCat("user", identity.uid) : identity.user_name;
  PasswdEntry entry{name,
                    identity.uid,
                    identity.gid,
                    identity.gecos,
                    identity.home.empty() ? "/" : identity.home,
                    identity.shell.empty() ? "/bin/sh" : identity.shell};
  return AccountFiles{MergePasswd(image_passwd, entry), MergeGroup(image_group, name, named)};
}

absl::StatusOr<std::string> ReadImageFile(int image_fd, absl::string_view clean, size_t limit) {
  auto fd = OpenAt2(image_fd, std::string(clean), O_RDONLY | O_NOCTTY | O_NONBLOCK,
                    RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
  if (!fd.ok()) {
    if (absl::IsNotFound(fd.status())) return std::string();
    return Annotate(fd.status(), "reading the image");
  }
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return ErrnoStatus(absl::StrCat("/", clean), errno);
  if (!S_ISREG(st.st_mode)) return std::string();
  if (static_cast<size_t>(st.st_size) > limit) {
    return absl::ResourceExhaustedError(
        absl::StrCat("image /", clean, " is larger than ", limit, " bytes"));
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  RETURN_IF_ERROR(PreadFull(fd->get(), {reinterpret_cast<uint8_t*>(data.data()), data.size()}, 0));
  return data;
}

}  // namespace berth::daemon::launch
