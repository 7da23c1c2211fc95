#include "daemon/build/remove_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::daemon::build {
namespace {

// Deep trees are walked with one descriptor per level; past this the rest
// is refused rather than exhausting the daemon's descriptors.
constexpr int kMaxDepth = 512;

absl::Status Empty(int dir_fd, dev_t dev, int depth);

absl::Status RemoveEntry(int dir_fd, const std::string& name, dev_t dev, int depth) {
  if (::unlinkat(dir_fd, name.c_str(), 0) == 0 || errno == ENOENT) return absl::OkStatus();
  if (errno != EISDIR && errno != EPERM) return ErrnoStatus(absl::StrCat("removing ", name), errno);
  int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == EACCES) {
    // A directory the build made unreadable: it is ours to open up.
    (void)::fchmodat(dir_fd, name.c_str(), 0700, 0);
    fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  if (fd < 0) return ErrnoStatus(absl::StrCat("opening ", name), errno);
  UniqueFd sub(fd);
  struct stat st;
  if (::fstat(sub.get(), &st) != 0) return ErrnoStatus(name, errno);
  if (st.st_dev != dev) {
    return absl::FailedPreconditionError(absl::StrCat(name, " is another filesystem (a mount?)"));
  }
  if ((st.st_mode & 0700) != 0700) (void)::fchmod(sub.get(), 0700);
  RETURN_IF_ERROR(Empty(sub.get(), dev, depth + 1));
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return ErrnoStatus(absl::StrCat("removing ", name), errno);
  }
  return absl::OkStatus();
}

absl::Status Empty(int dir_fd, dev_t dev, int depth) {
  if (depth > kMaxDepth) return absl::ResourceExhaustedError("directory tree too deep");
  for (;;) {
    int fd = ::dup(dir_fd);
    if (fd < 0) return ErrnoStatus("dup", errno);
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      ::close(fd);
      return ErrnoStatus("reading a directory", errno);
    }
    ::rewinddir(d);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
      if (names.size() >= 4096) break;  // bounded memory per level
    }
    ::closedir(d);
    if (names.empty()) return absl::OkStatus();
    for (const std::string& n : names) RETURN_IF_ERROR(RemoveEntry(dir_fd, n, dev, depth));
  }
}

}  // namespace

absl::Status RemoveTreeAt(int parent_fd, absl::string_view name) {
  struct stat st;
  if (::fstat(parent_fd, &st) != 0) return ErrnoStatus("the parent directory", errno);
  return RemoveEntry(parent_fd, std::string(name), st.st_dev, 0);
}

absl::Status EmptyDirectory(int dir_fd) {
  struct stat st;
  if (::fstat(dir_fd, &st) != 0) return ErrnoStatus("the directory", errno);
  return Empty(dir_fd, st.st_dev, 0);
}

}  // namespace berth::daemon::build
