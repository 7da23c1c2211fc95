#include "daemon/image/image_trust.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/unique_fd.h"

namespace berth::daemon::image {
namespace {

constexpr long kFuseSuperMagic = 0x65735546;

TrustVerdict NotTrusted(std::string reason) {
  return {false, std::move(reason)};
}

// Empty when `st` (a file or a directory on the way to it) is root-owned and
// not writable by group or other.
std::string OwnershipProblem(const struct stat& st, const std::string& what) {
  if (st.st_uid != 0) return absl::StrFormat("%s is owned by uid %d", what, st.st_uid);
  if ((st.st_mode & 022) != 0) {
    return absl::StrFormat("%s is writable by group or other (mode %o)", what, st.st_mode & 07777);
  }
  return "";
}

std::string ProcFdPath(int fd) {
  char buf[4096];
  std::string link = absl::StrCat("/proc/self/fd/", fd);
  ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

// Walks `path` from / without following symlinks, checking each directory,
// and returns the problem found (empty: the path is sound and leads to `file`).
std::string WalkPath(const std::string& path, const struct stat& file) {
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  if (parts.empty()) return "the image path is /";
  UniqueFd dir(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  std::string walked = "/";
  for (size_t i = 0; i < parts.size(); ++i) {
    struct stat st;
    if (!dir || fstat(dir.get(), &st) != 0) return absl::StrCat("cannot inspect ", walked);
    if (std::string p = OwnershipProblem(st, "directory " + walked); !p.empty()) return p;
    const bool last = i + 1 == parts.size();
    int flags = O_PATH | O_NOFOLLOW | O_CLOEXEC | (last ? 0 : O_DIRECTORY);
    UniqueFd next(openat(dir.get(), parts[i].c_str(), flags));
    walked = absl::StrCat(walked == "/" ? "" : walked, "/", parts[i]);
    if (!next) return absl::StrCat(walked, " changed while we looked at it");
    dir = std::move(next);
  }
  struct stat st;
  if (fstat(dir.get(), &st) != 0 || st.st_dev != file.st_dev || st.st_ino != file.st_ino) {
    return absl::StrCat(path, " no longer names the opened file");
  }
  return "";
}

}  // namespace

TrustVerdict JudgeImageFile(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return NotTrusted("cannot stat the image");
  if (std::string p = OwnershipProblem(st, "the image file"); !p.empty()) return NotTrusted(p);
  struct statfs fs;
  if (fstatfs(fd, &fs) != 0) return NotTrusted("cannot statfs the image");
  if (fs.f_type == kFuseSuperMagic) {
    return NotTrusted("the image is on a FUSE filesystem (its server decides the bytes)");
  }
  std::string path = ProcFdPath(fd);
  if (path.empty() || path[0] != '/' || absl::EndsWith(path, " (deleted)")) {
    return NotTrusted("the image has no path (deleted?)");
  }
  if (std::string p = WalkPath(path, st); !p.empty()) return NotTrusted(p);
  return {true, ""};
}

}  // namespace berth::daemon::image
