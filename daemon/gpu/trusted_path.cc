#include "daemon/gpu/trusted_path.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::daemon::gpu {
namespace {

bool OwnedByTrusted(const struct stat& st, uid_t owner) {
  return st.st_uid == 0 || st.st_uid == owner;
}

absl::Status Untrusted(const std::string& display, const std::string& what, const struct stat& st) {
  return absl::PermissionDeniedError(absl::StrFormat(
      "%s: %s is owned by uid %d with mode %04o; it must belong to root and be writable by "
      "nobody else (chown root; chmod go-w)",
      display, what, st.st_uid, st.st_mode & 07777));
}

absl::Status KernelName(int fd, std::string& out) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(absl::StrCat("/proc/self/fd/", fd).c_str(), buf, sizeof buf - 1);
  if (n < 0) return ErrnoStatus("resolving the path", errno);
  out.assign(buf, static_cast<size_t>(n));
  return absl::OkStatus();
}

// Each directory above `path`, up to "/": an entry in a directory someone
// else may write could be swapped for theirs.
absl::Status CheckAncestors(const std::string& path, const std::string& display, uid_t owner) {
  std::string dir = path;
  while (dir.size() > 1) {
    size_t slash = dir.find_last_of('/');
    dir = slash == 0 ? "/" : dir.substr(0, slash);
    struct stat st;
    if (::lstat(dir.c_str(), &st) != 0) return ErrnoStatus(absl::StrCat(display, ": ", dir), errno);
    bool shared_write = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
    if (!OwnedByTrusted(st, owner) || (shared_write && (st.st_mode & S_ISVTX) == 0)) {
      return Untrusted(display, absl::StrCat("its directory ", dir), st);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckTrusted(int fd, const std::string& display, uid_t owner) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus(display, errno);
  if (!OwnedByTrusted(st, owner) || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return Untrusted(display, "it", st);
  }
  std::string path;
  RETURN_IF_ERROR(KernelName(fd, path));
  if (!absl::StartsWith(path, "/")) {
    return absl::FailedPreconditionError(absl::StrCat(display, ": not reachable from /"));
  }
  return CheckAncestors(path, display, owner);
}

}  // namespace berth::daemon::gpu
