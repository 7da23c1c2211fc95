#include "daemon/build/worker/copy_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/build/worker/in_root.h"

namespace berth::build_worker {
namespace {

constexpr int kMaxDepth = 256;

struct Counter {
  int64_t entries = 0;
  int64_t bytes = 0;
};

absl::Status CopyData(int in, int out, const std::string& what, Counter& n) {
  for (;;) {
    ssize_t r = ::sendfile(out, in, nullptr, 1 << 30);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoStatus(what, errno);
    if (r == 0) return absl::OkStatus();
    n.bytes += r;
  }
}

// A new regular file `name` in `dir` (cp -f: an entry in the way, a symlink
// included, is replaced, never followed).
absl::StatusOr<UniqueFd> CreateFile(int dir, const std::string& name, mode_t mode) {
  int flags = O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC;
  int fd = ::openat(dir, name.c_str(), flags, mode);
  if (fd < 0 && (errno == ELOOP || errno == EISDIR || errno == ETXTBSY)) {
    if (::unlinkat(dir, name.c_str(), 0) != 0) return ErrnoStatus(name, errno);
    fd = ::openat(dir, name.c_str(), flags, mode);
  }
  if (fd < 0) return ErrnoStatus(name, errno);
  return UniqueFd(fd);
}

absl::Status CopyEntry(int src_dir, const std::string& src_name, const std::string& shown,
                       int dst_dir, const std::string& dst_name, int depth, Counter& n);

absl::Status CopyDirectory(int src, const std::string& shown, int dst_dir,
                           const std::string& dst_name, mode_t mode, int depth, Counter& n) {
  if (depth > kMaxDepth) return absl::InvalidArgumentError(absl::StrCat(shown, ": too deep"));
  if (::mkdirat(dst_dir, dst_name.c_str(), mode | 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(dst_name, errno);
  }
  UniqueFd out(
      ::openat(dst_dir, dst_name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!out) return ErrnoStatus(absl::StrCat("destination ", dst_name), errno);
  int listing = ::dup(src);
  DIR* d = listing >= 0 ? ::fdopendir(listing) : nullptr;
  if (d == nullptr) return ErrnoStatus(shown, errno);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(d);
  for (const std::string& name : names) {
    RETURN_IF_ERROR(
        CopyEntry(src, name, absl::StrCat(shown, "/", name), out.get(), name, depth + 1, n));
  }
  ::fchmod(out.get(), mode & 07777);
  return absl::OkStatus();
}

// cp -L: symlinks in the source are followed; the source is read with the
// worker's rights, which are the caller's.
absl::Status CopyEntry(int src_dir, const std::string& src_name, const std::string& shown,
                       int dst_dir, const std::string& dst_name, int depth, Counter& n) {
  UniqueFd src(::openat(src_dir, src_name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!src) return ErrnoStatus(shown, errno);
  struct stat st;
  if (::fstat(src.get(), &st) != 0) return ErrnoStatus(shown, errno);
  ++n.entries;
  if (S_ISDIR(st.st_mode)) {
    return CopyDirectory(src.get(), shown, dst_dir, dst_name, st.st_mode, depth, n);
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(shown, ": not a regular file or directory"));
  }
  ::fcntl(src.get(), F_SETFL, 0);
  ASSIGN_OR_RETURN(UniqueFd out, CreateFile(dst_dir, dst_name, st.st_mode & 0777));
  RETURN_IF_ERROR(CopyData(src.get(), out.get(), shown, n));
  if (::fchmod(out.get(), st.st_mode & 0777) != 0) return ErrnoStatus(dst_name, errno);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> Glob(const std::string& pattern) {
  glob_t g{};
  int rc = ::glob(pattern.c_str(), GLOB_NOSORT | GLOB_NOESCAPE, nullptr, &g);
  std::vector<std::string> out;
  for (size_t i = 0; rc == 0 && i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  ::globfree(&g);
  if (rc == GLOB_NOMATCH || out.empty()) {
    // Nothing matched: the source itself, for cp's own error (a file that
    // exists but cannot be listed, or does not exist).
    out.push_back(pattern);
  } else if (rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat(pattern, ": glob failed"));
  }
  return out;
}

absl::Status CopyLine(int root_fd, const v1::FileCopy& line, Counter& n) {
  std::string dst = line.destination().empty() ? line.source() : line.destination();
  ASSIGN_OR_RETURN(std::vector<std::string> sources, Glob(line.source()));
  // cp's rule: into an existing directory, else to the path itself.
  auto existing = OpenInRoot(root_fd, dst, O_RDONLY | O_DIRECTORY);
  UniqueFd into;
  std::string name;
  if (existing.ok()) {
    into = *std::move(existing);
  } else {
    if (sources.size() > 1) {
      return absl::InvalidArgumentError(absl::StrCat("target '", dst, "' is not a directory"));
    }
    auto [parent, last] = SplitLast(dst);
    if (last.empty()) return absl::InvalidArgumentError("no destination");
    ASSIGN_OR_RETURN(into, MakeDirsInRoot(root_fd, parent));
    name = last;
  }
  for (const std::string& src : sources) {
    auto [src_parent, src_last] = SplitLast(src);
    if (src_last.empty()) return absl::InvalidArgumentError(absl::StrCat(src, ": not a file"));
    std::string target = name.empty() ? src_last : name;
    RETURN_IF_ERROR(CopyEntry(AT_FDCWD, src, src, into.get(), target, 0, n));
  }
  return absl::OkStatus();
}

absl::Status WriteOne(int root_fd, const v1::GeneratedFile& f) {
  auto [parent, last] = SplitLast(f.path());
  if (last.empty()) return absl::InvalidArgumentError("no file name");
  ASSIGN_OR_RETURN(UniqueFd dir, MakeDirsInRoot(root_fd, parent));
  struct stat st;
  bool exists = ::fstatat(dir.get(), last.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (exists && f.if_missing()) return absl::OkStatus();
  if (f.directory()) {
    if (::mkdirat(dir.get(), last.c_str(), f.mode() ? f.mode() : 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus(f.path(), errno);
    }
    return absl::OkStatus();
  }
  if (!f.symlink().empty()) {
    if (exists) ::unlinkat(dir.get(), last.c_str(), S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0);
    if (::symlinkat(f.symlink().c_str(), dir.get(), last.c_str()) != 0) {
      return ErrnoStatus(f.path(), errno);
    }
    return absl::OkStatus();
  }
  int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (f.append() ? O_APPEND : O_TRUNC);
  UniqueFd out(::openat(dir.get(), last.c_str(), flags, f.mode()));
  if (!out && errno == ELOOP) {
    ::unlinkat(dir.get(), last.c_str(), 0);
    out.Reset(::openat(dir.get(), last.c_str(), flags, f.mode()));
  }
  if (!out) return ErrnoStatus(f.path(), errno);
  const std::string& c = f.content();
  RETURN_IF_ERROR(WriteAll(out.get(), {reinterpret_cast<const uint8_t*>(c.data()), c.size()}));
  if (::fchmod(out.get(), f.mode()) != 0) return ErrnoStatus(f.path(), errno);
  return absl::OkStatus();
}

// `%files from STAGE`: the worker (one job per process) makes the earlier
// stage's root its own, so that globs, absolute symlinks and `..` in the
// sources resolve inside that stage, as they did when it was built, never
// on the host (Apptainer copies from the host's view: singularity#3348).
// The destination is still reached through `root_fd`, beneath the root.
absl::Status EnterStageRoot(int stage_root_fd) {
  if (::fchdir(stage_root_fd) != 0) return ErrnoStatus("entering the stage's root", errno);
  if (::chroot(".") != 0) return ErrnoStatus("chroot into the stage's root", errno);
  if (::chdir("/") != 0) return ErrnoStatus("entering the stage's root", errno);
  return absl::OkStatus();
}

}  // namespace

absl::Status CopyFiles(int root_fd, const v1::CopyFiles& job, v1::WorkerResult& result) {
  if (job.source_root_fd() >= 0) RETURN_IF_ERROR(EnterStageRoot(job.source_root_fd()));
  Counter n;
  for (const v1::FileCopy& line : job.files()) {
    absl::Status st = CopyLine(root_fd, line, n);
    if (!st.ok()) {
      return absl::Status(st.code(), absl::StrCat("line ", line.line(), ": copying ", line.source(),
                                                  ": ", st.message()));
    }
  }
  result.set_entries(n.entries);
  result.set_bytes(n.bytes);
  return absl::OkStatus();
}

absl::Status WriteFiles(int root_fd, const v1::WriteFiles& job) {
  for (const v1::GeneratedFile& f : job.files()) RETURN_IF_ERROR(WriteOne(root_fd, f));
  return absl::OkStatus();
}

}  // namespace berth::build_worker
