#include "daemon/build/worker/in_root.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::build_worker {

absl::StatusOr<UniqueFd> OpenInRoot(int root_fd, const std::string& path, int flags, mode_t mode) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  std::string rel = path.empty() ? "." : path;
  long fd;
  do {
    fd = ::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof(how));
  } while (fd < 0 && (errno == EAGAIN || errno == EINTR));
  if (fd < 0) return ErrnoStatus(absl::StrCat("/", absl::StripPrefix(path, "/")), errno);
  return UniqueFd(static_cast<int>(fd));
}

namespace {

constexpr int kMaxLinks = 40;  // the kernel's own limit on symlinks in a path

absl::StatusOr<UniqueFd> MakeDirs(int root_fd, const std::string& path, int links);

// `name` in `dir` exists but does not resolve: a dangling symlink, whose
// target (in the root) is created instead, as `mkdir -p` through it would.
absl::Status MakeLinkTarget(int root_fd, int dir, const std::string& name,
                            const std::string& parent, int links) {
  char target[4096];
  ssize_t n = ::readlinkat(dir, name.c_str(), target, sizeof(target) - 1);
  if (n < 0) return ErrnoStatus(absl::StrCat(parent, "/", name), errno);
  if (links >= kMaxLinks) return ErrnoStatus(absl::StrCat(parent, "/", name), ELOOP);
  std::string t(target, static_cast<size_t>(n));
  std::string resolved = t.front() == '/' ? t : absl::StrCat(parent, "/", t);
  return MakeDirs(root_fd, resolved, links + 1).status();
}

absl::StatusOr<UniqueFd> MakeDirs(int root_fd, const std::string& path, int links) {
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  std::string done;
  ASSIGN_OR_RETURN(UniqueFd dir, OpenInRoot(root_fd, "", O_RDONLY | O_DIRECTORY));
  for (const std::string& part : parts) {
    std::string next = absl::StrCat(done, "/", part);
    auto opened = OpenInRoot(root_fd, next, O_RDONLY | O_DIRECTORY);
    if (!opened.ok() && absl::IsNotFound(opened.status())) {
      // The parent as resolved in the root: the new directory goes there.
      if (::mkdirat(dir.get(), part.c_str(), 0755) != 0) {
        if (errno != EEXIST) return ErrnoStatus(absl::StrCat("creating ", next), errno);
        RETURN_IF_ERROR(MakeLinkTarget(root_fd, dir.get(), part, done, links));
      }
      opened = OpenInRoot(root_fd, next, O_RDONLY | O_DIRECTORY);
    }
    if (!opened.ok()) return opened.status();
    dir = *std::move(opened);
    done = std::move(next);
  }
  return dir;
}

}  // namespace

absl::StatusOr<UniqueFd> MakeDirsInRoot(int root_fd, const std::string& path) {
  return MakeDirs(root_fd, path, 0);
}

std::pair<std::string, std::string> SplitLast(const std::string& path) {
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  if (parts.empty()) return {"/", ""};
  std::string last = parts.back();
  parts.pop_back();
  return {absl::StrCat("/", absl::StrJoin(parts, "/")), last};
}

}  // namespace berth::build_worker
