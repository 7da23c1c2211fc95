#include "daemon/image/open_as_caller.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::image {
namespace {

// Raw system calls: they change only the calling thread's credentials.
// glibc's setgroups() (and setuid & co.) broadcast to every thread of the
// process, which would hand the caller's identity to all gRPC workers.
long RawSetgroups(const std::vector<gid_t>& groups) {
  return syscall(SYS_setgroups, groups.size(), groups.data());
}
// setfsuid/setfsgid return the previous value and report no errors; passing
// an invalid id (-1) changes nothing and so reads the current value.
uid_t RawSetfsuid(uid_t uid) {
  return static_cast<uid_t>(syscall(SYS_setfsuid, uid));
}
gid_t RawSetfsgid(gid_t gid) {
  return static_cast<gid_t>(syscall(SYS_setfsgid, gid));
}
constexpr uid_t kQueryId = static_cast<uid_t>(-1);

absl::StatusOr<std::vector<gid_t>> RawGetgroups() {
  long n = syscall(SYS_getgroups, 0, nullptr);
  if (n < 0) return ErrnoStatus("getgroups", errno);
  std::vector<gid_t> groups(static_cast<size_t>(n));
  n = syscall(SYS_getgroups, groups.size(), groups.data());
  if (n < 0) return ErrnoStatus("getgroups", errno);
  groups.resize(static_cast<size_t>(n));
  return groups;
}

// The calling thread's filesystem identity, switched to a caller's for the
// lifetime of the object and restored unconditionally in the destructor.
// Privilege: needs CAP_SETUID/CAP_SETGID (the daemon is root).
class ScopedFsIdentity {
 public:
  static absl::StatusOr<std::unique_ptr<ScopedFsIdentity>> Assume(const CallerCreds& creds) {
    auto guard = std::unique_ptr<ScopedFsIdentity>(new ScopedFsIdentity());
    ASSIGN_OR_RETURN(guard->saved_groups_, RawGetgroups());
    guard->saved_fsgid_ = RawSetfsgid(kQueryId);
    guard->saved_fsuid_ = RawSetfsuid(kQueryId);
    guard->active_ = true;  // from here on the destructor restores
    RETURN_IF_ERROR(guard->Switch(creds));
    return guard;
  }
  ~ScopedFsIdentity() {
    if (active_) Restore();
  }
  ScopedFsIdentity(const ScopedFsIdentity&) = delete;
  ScopedFsIdentity& operator=(const ScopedFsIdentity&) = delete;

 private:
  ScopedFsIdentity() = default;

  // Groups and fsgid first: dropping fsuid 0 also drops the filesystem
  // capabilities, and the order keeps the thread never "user uid + root groups".
  absl::Status Switch(const CallerCreds& creds) {
    if (RawSetgroups(creds.groups) != 0) return ErrnoStatus("setgroups", errno);
    RawSetfsgid(creds.gid);
    if (RawSetfsgid(creds.gid) != creds.gid) {
      return absl::InternalError(absl::StrFormat("setfsgid(%d) did not take effect", creds.gid));
    }
    RawSetfsuid(creds.uid);
    if (RawSetfsuid(creds.uid) != creds.uid) {
      return absl::InternalError(absl::StrFormat("setfsuid(%d) did not take effect", creds.uid));
    }
    return absl::OkStatus();
  }

  // A thread left with a user's identity would serve the next request as that
  // user: if any step of the restore fails, stop the daemon instead.
  void Restore() {
    RawSetfsuid(saved_fsuid_);
    if (RawSetfsuid(saved_fsuid_) != saved_fsuid_) Die("setfsuid");
    RawSetfsgid(saved_fsgid_);
    if (RawSetfsgid(saved_fsgid_) != saved_fsgid_) Die("setfsgid");
    if (RawSetgroups(saved_groups_) != 0) Die("setgroups");
  }
  [[noreturn]] static void Die(const char* step) {
    spdlog::critical("restoring the daemon's identity failed at {}: aborting", step);
    std::abort();
  }

  bool active_ = false;
  uid_t saved_fsuid_ = 0;
  gid_t saved_fsgid_ = 0;
  std::vector<gid_t> saved_groups_;
};

std::string Quoted(const std::string& path) {
  return absl::StrCat("\"", absl::CHexEscape(path), "\"");
}

// openat2 with RESOLVE_NO_MAGICLINKS: "/proc/self/..." resolves to the
// daemon, never a file the caller should reach through us. O_NONBLOCK during
// the open keeps a FIFO from parking a daemon thread until someone writes.
// `path` is absolute (dir_fd AT_FDCWD) or one component beneath dir_fd.
absl::StatusOr<UniqueFd> OpenNoMagicLinks(int dir_fd, const std::string& path, int flags,
                                          uint64_t extra_resolve = 0) {
  // openat2 refuses O_PATH combined with anything but O_DIRECTORY/O_NOFOLLOW.
  const int nonblock = (flags & O_PATH) ? 0 : O_NONBLOCK;
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC | nonblock);
  how.resolve = RESOLVE_NO_MAGICLINKS | extra_resolve |
                (dir_fd == AT_FDCWD || extra_resolve != 0 ? 0 : RESOLVE_BENEATH);
  int fd;
  do {
    fd = static_cast<int>(syscall(SYS_openat2, dir_fd, path.c_str(), &how, sizeof(how)));
  } while (fd < 0 && errno == EINTR);
  if (fd < 0 && errno == ENOSYS && extra_resolve == 0) {  // kernels before 5.6
    fd = ::openat(dir_fd, path.c_str(), flags | O_CLOEXEC | nonblock);
  }
  if (fd < 0) return ErrnoStatus(path, errno);
  UniqueFd owned(fd);
  if (!(flags & O_NONBLOCK) && !(flags & O_PATH) &&
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
    return ErrnoStatus(path, errno);
  }
  return owned;
}

absl::Status CheckDaemonMayActAs(const CallerCreds& creds) {
  if (creds.uid == geteuid()) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrFormat(
      "the daemon runs as uid %d and cannot open files as uid %d", geteuid(), creds.uid));
}

// The caller's filesystem identity on this thread until it goes out of
// scope; nothing (no switch) when the caller is the daemon's own uid.
absl::StatusOr<std::unique_ptr<ScopedFsIdentity>> ActAs(const CallerCreds& creds) {
  std::unique_ptr<ScopedFsIdentity> identity;
  if (geteuid() == 0 && creds.uid != 0) {
    // Why: the kernel must judge this open by the caller's permissions.
    ASSIGN_OR_RETURN(identity, ScopedFsIdentity::Assume(creds));
  } else {
    // The caller is the daemon's own uid (root calling a root daemon, or
    // the user of a user-mode daemon): its permissions are the daemon's.
    // No switch, which a user-mode daemon run by root could not undo: its
    // user namespace denies setgroups.
    RETURN_IF_ERROR(CheckDaemonMayActAs(creds));
  }
  return identity;
}

absl::StatusOr<UniqueFd> OpenWithCreds(const CallerCreds& creds, int dir_fd,
                                       const std::string& path, int flags, int access_mode,
                                       uint64_t extra_resolve = 0) {
  ASSIGN_OR_RETURN(std::unique_ptr<ScopedFsIdentity> identity, ActAs(creds));
  ASSIGN_OR_RETURN(UniqueFd fd, OpenNoMagicLinks(dir_fd, path, flags, extra_resolve));
  // AT_EACCESS: judge by the fs identity we assumed, not the real uid (root).
  if (access_mode != 0 &&
      syscall(SYS_faccessat2, fd.get(), "", access_mode, AT_EMPTY_PATH | AT_EACCESS) != 0) {
    return ErrnoStatus(path, errno);
  }
  return fd;
}

// A name beneath a directory descriptor: exactly one component, so that
// nothing resolves above or around the directory the daemon checked.
absl::Status CheckOneComponent(const std::string& name, const char* what) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", Quoted(name), " is not one path component"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateCallerPath(const std::string& path, const char* what) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  if (path.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", Quoted(path), " contains a NUL byte"));
  }
  if (path.size() >= PATH_MAX) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s is %d bytes long (limit %d)", what, path.size(), PATH_MAX - 1));
  }
  if (path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", Quoted(path), " is not absolute"));
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " ", Quoted(path), " has a \"..\" component"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> OpenAsCaller(const CallerCreds& creds, const std::string& path,
                                      int flags) {
  RETURN_IF_ERROR(ValidateCallerPath(path));
  if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
    return absl::InvalidArgumentError("OpenAsCaller opens existing files only");
  }
  return OpenWithCreds(creds, AT_FDCWD, path, flags, /*access_mode=*/0);
}

absl::StatusOr<UniqueFd> OpenPathAsCaller(const CallerCreds& creds, const std::string& path,
                                          int access_mode) {
  RETURN_IF_ERROR(ValidateCallerPath(path));
  return OpenWithCreds(creds, AT_FDCWD, path, O_PATH, access_mode);
}

absl::StatusOr<UniqueFd> OpenAtAsCaller(const CallerCreds& creds, int dir_fd,
                                        const std::string& name, int flags) {
  RETURN_IF_ERROR(CheckOneComponent(name, "file name"));
  if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
    return absl::InvalidArgumentError("OpenAtAsCaller opens existing files only");
  }
  return OpenWithCreds(creds, dir_fd, name, flags, /*access_mode=*/0);
}

absl::StatusOr<std::optional<std::string>> ReadInRootAsCaller(const CallerCreds& creds, int root_fd,
                                                              const std::string& path,
                                                              int64_t max_size) {
  if (path.empty() || path[0] == '/' || path.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("path ", Quoted(path), " is not relative"));
  }
  // RESOLVE_IN_ROOT: "..", absolute symlinks and magic links stay inside
  // the tree at root_fd; RESOLVE_NO_XDEV: no mount below it either.
  auto fd = OpenWithCreds(creds, root_fd, path, O_RDONLY | O_NOCTTY, /*access_mode=*/0,
                          RESOLVE_IN_ROOT | RESOLVE_NO_XDEV);
  if (!fd.ok()) {
    if (absl::IsNotFound(fd.status())) return std::nullopt;
    return fd.status();
  }
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return ErrnoStatus(path, errno);
  if (!S_ISREG(st.st_mode)) return std::nullopt;
  if (st.st_size > max_size) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("%s is larger than %d bytes", path, max_size));
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  RETURN_IF_ERROR_CTX(
      PreadFull(fd->get(), {reinterpret_cast<uint8_t*>(data.data()), data.size()}, 0), path);
  return data;
}

absl::StatusOr<AccountTexts> ReadAccountFilesAsCaller(const CallerCreds& creds, int root_fd) {
  constexpr int64_t kMaxAccountFile = 4 << 20;
  AccountTexts texts;
  for (auto [path, out] :
       {std::pair{"etc/passwd", &texts.passwd}, std::pair{"etc/group", &texts.group}}) {
    ASSIGN_OR_RETURN(std::optional<std::string> data,
                     ReadInRootAsCaller(creds, root_fd, path, kMaxAccountFile));
    *out = std::move(data).value_or("");
  }
  return texts;
}

absl::StatusOr<UniqueFd> MakeDirAtAsCaller(const CallerCreds& creds, int dir_fd,
                                           const std::string& name, mode_t mode) {
  RETURN_IF_ERROR(CheckOneComponent(name, "directory name"));
  ASSIGN_OR_RETURN(std::unique_ptr<ScopedFsIdentity> identity, ActAs(creds));
  bool made = ::mkdirat(dir_fd, name.c_str(), 0700) == 0;
  if (!made && errno != EEXIST) return ErrnoStatus(absl::StrCat("creating ", Quoted(name)), errno);
  // O_NOFOLLOW: a symlink the caller planted under this name is an error.
  auto fd = OpenNoMagicLinks(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!fd.ok()) return Annotate(fd.status(), "opening it as a directory (not a symlink)");
  if (made && ::fchmod(fd->get(), mode) != 0) {
    return ErrnoStatus(absl::StrCat("setting the mode of ", Quoted(name)), errno);
  }
  return fd;
}

}  // namespace berth::daemon::image
