#include "daemon/launch/image_paths.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <deque>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace berth::daemon::launch {
namespace {

constexpr int kMaxSymlinks = 40;  // the kernel's limit

std::deque<std::string> SplitComponents(absl::string_view path) {
  std::deque<std::string> out;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part != ".") out.emplace_back(part);
  }
  return out;
}

// mkdir that tolerates an existing directory (an earlier mount point's
// ancestor), then sets the exact mode (mkdir is subject to the umask).
absl::Status EnsureDir(int staging_fd, const std::string& rel, mode_t mode) {
  if (::mkdirat(staging_fd, rel.c_str(), 0700) != 0) {
    if (errno != EEXIST) return ErrnoStatus(absl::StrCat("staging /", rel), errno);
    struct stat st;
    if (::fstatat(staging_fd, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("staging /", rel, ": needed both as a file and as a directory"));
    }
    return absl::OkStatus();
  }
  if (::fchmodat(staging_fd, rel.c_str(), mode & 07777, 0) != 0) {
    return ErrnoStatus(absl::StrCat("staging /", rel), errno);
  }
  return absl::OkStatus();
}

// A staged copy of an image directory: same mode, and the same owner where
// this namespace can express it (an unmapped owner stays the daemon's).
absl::Status MirrorImageDir(int image_fd, int staging_fd, const std::string& rel) {
  struct stat st;
  if (::fstatat(image_fd, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus(absl::StrCat("image /", rel), errno);
  }
  RETURN_IF_ERROR(EnsureDir(staging_fd, rel, st.st_mode));
  (void)::fchownat(staging_fd, rel.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
  return absl::OkStatus();
}

// Creates every directory up to (not including) the last missing component.
absl::Status StageParents(int image_fd, int staging_fd, const ImagePath& where) {
  for (size_t i = 1; i <= where.existing.size(); ++i) {
    RETURN_IF_ERROR(MirrorImageDir(image_fd, staging_fd, JoinComponents(where.existing, i)));
  }
  std::vector<std::string> all = where.existing;
  for (size_t i = 0; i + 1 < where.missing.size(); ++i) {
    all.push_back(where.missing[i]);
    RETURN_IF_ERROR(EnsureDir(staging_fd, JoinComponents(all, all.size()), 0755));
  }
  return absl::OkStatus();
}

std::string FullPath(const ImagePath& where) {
  std::vector<std::string> all = where.existing;
  all.insert(all.end(), where.missing.begin(), where.missing.end());
  return JoinComponents(all, all.size());
}

}  // namespace

absl::StatusOr<std::string> CleanContainerPath(absl::string_view path, bool allow_root) {
  if (path.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("container path contains a NUL byte");
  }
  if (path.size() >= PATH_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("container path too long (", path.size(), ")"));
  }
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("container path '", path, "' is not absolute"));
  }
  std::deque<std::string> parts = SplitComponents(path);
  for (const std::string& part : parts) {
    if (part == "..") {
      return absl::InvalidArgumentError(absl::StrCat("container path ", path, " contains '..'"));
    }
  }
  if (parts.empty() && !allow_root) {
    return absl::InvalidArgumentError("nothing may be mounted over the container's /");
  }
  std::vector<std::string> v(parts.begin(), parts.end());
  return JoinComponents(v, v.size());
}

bool IsUnderProc(absl::string_view clean) {
  return clean == "proc" || absl::StartsWith(clean, "proc/");
}

absl::StatusOr<std::string> ReadLinkAt(int dirfd, const std::string& rel) {
  char buf[PATH_MAX];
  ssize_t n = ::readlinkat(dirfd, rel.c_str(), buf, sizeof(buf));
  if (n < 0) return ErrnoStatus(absl::StrCat("readlink /", rel), errno);
  if (n == sizeof(buf))
    return absl::InvalidArgumentError(absl::StrCat("/", rel, ": link too long"));
  return std::string(buf, static_cast<size_t>(n));
}

std::string JoinComponents(const std::vector<std::string>& parts, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) out += '/';
    out += parts[i];
  }
  return out;
}

absl::StatusOr<ImagePath> ResolveInImage(int image_fd, absl::string_view clean) {
  ImagePath out;
  out.type = S_IFDIR;  // the root
  std::deque<std::string> todo = SplitComponents(clean);
  int links = 0;
  while (!todo.empty()) {
    std::string part = std::move(todo.front());
    todo.pop_front();
    if (part == "..") {
      if (!out.existing.empty()) out.existing.pop_back();
      continue;
    }
    if (!S_ISDIR(out.type)) {
      return ErrnoStatus(absl::StrCat("/", clean, ": in the image"), ENOTDIR);
    }
    out.existing.push_back(part);
    std::string rel = JoinComponents(out.existing, out.existing.size());
    struct stat st;
    if (::fstatat(image_fd, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) return ErrnoStatus(absl::StrCat("image /", rel), errno);
      out.existing.pop_back();
      out.missing.push_back(std::move(part));
      out.missing.insert(out.missing.end(), todo.begin(), todo.end());
      // ".." after a missing component cannot occur: the input is clean.
      return out;
    }
    if (S_ISLNK(st.st_mode)) {
      if (++links > kMaxSymlinks) return ErrnoStatus(absl::StrCat("/", clean), ELOOP);
      ASSIGN_OR_RETURN(std::string target, ReadLinkAt(image_fd, rel));
      out.existing.pop_back();
      if (!target.empty() && target[0] == '/') out.existing.clear();
      std::deque<std::string> more = SplitComponents(target);
      todo.insert(todo.begin(), more.begin(), more.end());
      continue;
    }
    out.type = st.st_mode & S_IFMT;
  }
  return out;
}

absl::Status StageMountPoint(int image_fd, int staging_fd, absl::string_view clean,
                             bool directory) {
  ASSIGN_OR_RETURN(ImagePath where, ResolveInImage(image_fd, clean));
  if (where.missing.empty()) {
    if (S_ISDIR(where.type) != directory) {
      return absl::FailedPreconditionError(
          absl::StrCat("/", clean,
                       directory ? " is not a directory in the image, the source is one"
                                 : " is a directory in the image, the source is not"));
    }
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(StageParents(image_fd, staging_fd, where));
  std::string full = FullPath(where);
  if (directory) return EnsureDir(staging_fd, full, 0755);
  UniqueFd file(
      ::openat(staging_fd, full.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!file) return ErrnoStatus(absl::StrCat("staging /", full), errno);
  return absl::OkStatus();
}

absl::Status StageShadowFile(int image_fd, int staging_fd, absl::string_view clean,
                             absl::string_view content) {
  ASSIGN_OR_RETURN(ImagePath where, ResolveInImage(image_fd, clean));
  if (where.missing.empty() && !S_ISREG(where.type)) {
    return absl::FailedPreconditionError(absl::StrCat("/", clean, " is not a file in the image"));
  }
  // Shadowing an existing image file: only its parents are directories.
  ImagePath target = where;
  if (target.missing.empty()) {
    if (target.existing.empty()) return absl::InvalidArgumentError("cannot shadow /");
    target.missing = {target.existing.back()};
    target.existing.pop_back();
  }
  RETURN_IF_ERROR(StageParents(image_fd, staging_fd, target));
  std::string full = FullPath(target);
  UniqueFd file(::openat(staging_fd, full.c_str(),
                         O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!file) return ErrnoStatus(absl::StrCat("staging /", full), errno);
  if (::fchmod(file.get(), 0644) != 0) return ErrnoStatus(absl::StrCat("staging /", full), errno);
  return Annotate(
      WriteAll(file.get(), {reinterpret_cast<const uint8_t*>(content.data()), content.size()}),
      absl::StrCat("staging /", full));
}

absl::Status CopyRootAttributes(int image_fd, int dir_fd) {
  struct stat st;
  if (::fstat(image_fd, &st) != 0) return ErrnoStatus("image root", errno);
  if (::fchmod(dir_fd, st.st_mode & 07777) != 0) return ErrnoStatus("layer root", errno);
  (void)::fchown(dir_fd, st.st_uid, st.st_gid);
  return absl::OkStatus();
}

}  // namespace berth::daemon::launch
