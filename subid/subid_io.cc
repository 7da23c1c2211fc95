#include "subid/subid_io.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <span>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::subid {
namespace {

absl::Status Untrusted(const std::string& path, absl::string_view why) {
  return absl::PermissionDeniedError(absl::StrCat(
      path, " ", why, ": berthd will not map user namespace ids from it; fix: chown root:root ",
      path, " && chmod 644 ", path,
      " (and its directories: root-owned, not group/other-writable)"));
}

// Empty when no one but root can change `st` (a directory may be
// world-writable when sticky and root-owned, like /tmp: then only a file's
// owner can rename or remove it, and the next step checks that owner).
std::string Problem(const struct stat& st, bool directory) {
  if (st.st_uid != 0) return absl::StrFormat("is owned by uid %d", st.st_uid);
  bool sticky = directory && (st.st_mode & S_ISVTX) != 0;
  if ((st.st_mode & 022) != 0 && !sticky) {
    return absl::StrFormat("is writable by group or other (mode %04o)", st.st_mode & 07777);
  }
  return "";
}

// Walks from / to `path` without following symlinks, each directory judged,
// and requires the walk to end at the inode of `file`.
absl::Status CheckDirectories(const std::string& path, const struct stat& file) {
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  UniqueFd at(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  std::string walked = "/";
  for (size_t i = 0; i < parts.size(); ++i) {
    struct stat st;
    if (!at || ::fstat(at.get(), &st) != 0) return ErrnoStatus(walked, errno);
    if (std::string p = Problem(st, true); !p.empty()) {
      return Untrusted(path, absl::StrCat("(its directory ", walked, " ", p, ")"));
    }
    bool last = i + 1 == parts.size();
    UniqueFd next(::openat(at.get(), parts[i].c_str(),
                           O_PATH | O_NOFOLLOW | O_CLOEXEC | (last ? 0 : O_DIRECTORY)));
    walked = absl::StrCat(walked == "/" ? "" : walked, "/", parts[i]);
    if (!next) return Untrusted(path, absl::StrCat("(", walked, " is a symlink or changed)"));
    at = std::move(next);
  }
  struct stat st;
  if (::fstat(at.get(), &st) != 0 || st.st_dev != file.st_dev || st.st_ino != file.st_ino) {
    return Untrusted(path, "changed while it was read");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadAll(int fd, const struct stat& st, const std::string& path,
                                    size_t limit) {
  if (static_cast<uint64_t>(st.st_size) > limit) {
    return absl::ResourceExhaustedError(
        absl::StrCat(path, " is larger than ", limit >> 20, " MiB: not a subordinate id file?"));
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  RETURN_IF_ERROR_CTX(
      PreadFull(fd, std::span(reinterpret_cast<uint8_t*>(text.data()), text.size()), 0), path);
  return text;
}

// The pid a lock file names, or 0.
pid_t LockHolder(const std::string& lock_path) {
  auto fd = OpenFile(lock_path, O_RDONLY | O_NOFOLLOW);
  if (!fd.ok()) return 0;
  char buf[32] = {};
  ssize_t n = ::read(fd->get(), buf, sizeof buf - 1);
  int pid = 0;
  if (n <= 0 || !absl::SimpleAtoi(absl::StripAsciiWhitespace(buf), &pid)) return 0;
  return pid;
}

}  // namespace

absl::StatusOr<std::string> ReadTrustedSubidFile(const std::string& path, size_t limit) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not an absolute path"));
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd && errno == ENOENT) return std::string();
  if (!fd && errno == ELOOP) return Untrusted(path, "is a symlink");
  if (!fd) return ErrnoStatus(path, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(path, errno);
  if (!S_ISREG(st.st_mode)) return Untrusted(path, "is not a regular file");
  if (std::string p = Problem(st, false); !p.empty()) return Untrusted(path, p);
  RETURN_IF_ERROR(CheckDirectories(path, st));
  return ReadAll(fd.get(), st, path, limit);
}

absl::StatusOr<SubidLock> SubidLock::Acquire(const std::string& path) {
  std::string lock_path = path + ".lock";
  for (int attempt = 0; attempt < 2; ++attempt) {
    UniqueFd fd(::open(lock_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (fd) {
      std::string pid = absl::StrCat(::getpid(), "\n");
      RETURN_IF_ERROR_CTX(
          WriteAll(fd.get(), std::span(reinterpret_cast<const uint8_t*>(pid.data()), pid.size())),
          lock_path);
      return SubidLock(lock_path);
    }
    if (errno != EEXIST) return ErrnoStatus(lock_path, errno);
    pid_t holder = LockHolder(lock_path);
    if (holder <= 0 || ::kill(holder, 0) == 0 || errno != ESRCH) break;
    ::unlink(lock_path.c_str());  // its process is gone
  }
  return absl::UnavailableError(
      absl::StrCat(lock_path, " exists: another tool (usermod, berth) is editing ", path,
                   "; try again, or remove the lock if nothing is"));
}

SubidLock::SubidLock(SubidLock&& other) noexcept
    : lock_path_(std::exchange(other.lock_path_, std::string())) {}

SubidLock::~SubidLock() {
  if (!lock_path_.empty()) ::unlink(lock_path_.c_str());
}

absl::StatusOr<std::string> ReadSubidFile(const std::string& path, size_t limit) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd && errno == ENOENT) return std::string();
  if (!fd) return ErrnoStatus(path, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(path, errno);
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(path + ": not a regular file");
  return ReadAll(fd.get(), st, path, limit);
}

absl::Status ReplaceSubidFile(const std::string& path, absl::string_view text) {
  struct stat st {};
  bool exists = ::stat(path.c_str(), &st) == 0;
  if (!exists && errno != ENOENT) return ErrnoStatus(path, errno);
  mode_t mode = exists ? (st.st_mode & 07777) : 0644;
  std::string tmp = absl::StrCat(path, ".berth-", ::getpid());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return ErrnoStatus(tmp, errno);
  absl::Status written =
      WriteAll(fd.get(), std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  if (written.ok() && exists && ::fchown(fd.get(), st.st_uid, st.st_gid) != 0) {
    written = ErrnoStatus(absl::StrCat("chown ", tmp), errno);
  }
  if (written.ok() && ::fchmod(fd.get(), mode) != 0) written = ErrnoStatus("chmod " + tmp, errno);
  if (written.ok() && ::fsync(fd.get()) != 0) written = ErrnoStatus("fsync " + tmp, errno);
  if (written.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    written = ErrnoStatus(absl::StrCat("renaming ", tmp, " to ", path), errno);
  }
  if (!written.ok()) ::unlink(tmp.c_str());
  return written;
}

}  // namespace berth::subid
