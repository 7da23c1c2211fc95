#include "daemon/server/listening_socket.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace berth::daemon {
namespace {

struct SocketModes {
  mode_t dir;
  mode_t socket;
};

SocketModes ModesFor(DaemonMode mode) {
  if (mode == DaemonMode::kSystem) return {0755, 0666};
  return {0700, 0600};
}

absl::StatusOr<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.front() != '/') {
    return absl::InvalidArgumentError(absl::StrCat("socket path must be absolute: ", path));
  }
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrFormat("socket path is longer than %d bytes: %s",
                                                      sizeof(addr.sun_path) - 1, path));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

absl::Status CheckSocketDirIsOurs(const std::string& dir, DaemonMode mode) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) return ErrnoStatus(dir, errno);
  if (!S_ISDIR(st.st_mode)) return absl::FailedPreconditionError(dir + " is not a directory");
  if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "socket directory %s must be owned by uid %d and writable only by it (it is uid %d, "
        "mode %04o)",
        dir, geteuid(), st.st_uid, st.st_mode & 07777));
  }
  if (mode == DaemonMode::kSystem && (st.st_mode & S_IXOTH) == 0) {
    spdlog::warn("socket directory {} is not searchable by other users: they cannot connect", dir);
  }
  return absl::OkStatus();
}

absl::Status PrepareSocketDir(const std::string& dir, DaemonMode mode) {
  mode_t dir_mode = ModesFor(mode).dir;
  if (mkdir(dir.c_str(), dir_mode) == 0) {
    // mkdir applies the umask; clients can only reach the socket with the exact mode.
    if (chmod(dir.c_str(), dir_mode) != 0) return ErrnoStatus(dir, errno);
    return absl::OkStatus();
  }
  if (errno != EEXIST) return ErrnoStatus(absl::StrCat("creating ", dir), errno);
  return CheckSocketDirIsOurs(dir, mode);
}

absl::StatusOr<UniqueFd> LockSocketPath(const std::string& path) {
  std::string lock_path = path + ".lock";
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(lock_path, O_RDWR | O_CREAT | O_NOFOLLOW, 0600));
  if (flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return fd;
  if (errno == EWOULDBLOCK) {
    return absl::AlreadyExistsError(
        absl::StrCat("another berthd is already running on ", path, " (it holds ", lock_path, ")"));
  }
  return ErrnoStatus(absl::StrCat("locking ", lock_path), errno);
}

// Whether some process accepts connections at `addr` right now.
absl::StatusOr<bool> SomeoneAnswers(const sockaddr_un& addr) {
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoStatus("socket", errno);
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) return true;
  if (errno == EAGAIN) return true;  // listening, its backlog full
  if (errno == ECONNREFUSED) return false;
  return ErrnoStatus("connect test", errno);
}

// Whether a socket file is at `path`; anything else there is an error.
absl::StatusOr<bool> SocketFileExists(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    return ErrnoStatus(path, errno);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a socket: refusing to replace it"));
  }
  return true;
}

absl::Status RemoveStaleSocket(const std::string& path, const sockaddr_un& addr) {
  ASSIGN_OR_RETURN(bool exists, SocketFileExists(path));
  if (!exists) return absl::OkStatus();
  ASSIGN_OR_RETURN(bool live, SomeoneAnswers(addr));
  if (live)
    return absl::AlreadyExistsError(absl::StrCat("another berthd is already serving ", path));
  spdlog::info("removing stale socket {} (nobody answers on it)", path);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus(path, errno);
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> BindAndListen(const sockaddr_un& addr, mode_t socket_mode) {
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoStatus("socket", errno);
  // Born owner-only, then opened up: never wider than meant, whatever the umask.
  mode_t old_umask = umask(0177);
  int rc = bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  int bind_errno = errno;
  umask(old_umask);
  if (rc != 0) return ErrnoStatus(absl::StrCat("binding ", addr.sun_path), bind_errno);
  absl::Cleanup remove_socket = [&addr] { unlink(addr.sun_path); };
  if (chmod(addr.sun_path, socket_mode) != 0) return ErrnoStatus(addr.sun_path, errno);
  if (listen(fd.get(), SOMAXCONN) != 0) return ErrnoStatus("listen", errno);
  std::move(remove_socket).Cancel();
  return fd;
}

absl::StatusOr<ino_t> SocketFileInode(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return ErrnoStatus(path, errno);
  return st.st_ino;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ListeningSocket>> ListeningSocket::Claim(const std::string& path,
                                                                        DaemonMode mode) {
  ASSIGN_OR_RETURN(sockaddr_un addr, UnixAddress(path));
  std::string dir = std::filesystem::path(path).parent_path().string();
  RETURN_IF_ERROR(PrepareSocketDir(dir, mode));
  // Before locking, so that a wrong path leaves no PATH.lock behind.
  RETURN_IF_ERROR(SocketFileExists(path).status());
  ASSIGN_OR_RETURN(UniqueFd lock_fd, LockSocketPath(path));
  RETURN_IF_ERROR(RemoveStaleSocket(path, addr));
  ASSIGN_OR_RETURN(UniqueFd listen_fd, BindAndListen(addr, ModesFor(mode).socket));
  ASSIGN_OR_RETURN(ino_t ino, SocketFileInode(path));
  return std::unique_ptr<ListeningSocket>(
      new ListeningSocket(path, std::move(lock_fd), std::move(listen_fd), ino));
}

ListeningSocket::ListeningSocket(std::string path, UniqueFd lock_fd, UniqueFd listen_fd, ino_t ino)
    : path_(std::move(path)),
      lock_fd_(std::move(lock_fd)),
      listen_fd_(std::move(listen_fd)),
      socket_ino_(ino) {}

void ListeningSocket::Close() {
  listen_fd_.Reset();
  if (socket_ino_ == 0) return;
  // Only our own socket: the path may have been replaced by hand meanwhile.
  struct stat st {};
  if (lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == socket_ino_) {
    unlink(path_.c_str());
  }
  socket_ino_ = 0;
}

}  // namespace berth::daemon
