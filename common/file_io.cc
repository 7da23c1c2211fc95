#include "common/file_io.h"

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

namespace berth {
namespace {

constexpr size_t kCopyChunk = 1 << 20;

absl::StatusCode CodeForErrno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::StatusCode::kNotFound;
    case EACCES:
    case EPERM:
      return absl::StatusCode::kPermissionDenied;
    case EEXIST:
      return absl::StatusCode::kAlreadyExists;
    case EINVAL:
    case ELOOP:
    case ENAMETOOLONG:
      return absl::StatusCode::kInvalidArgument;
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
      return absl::StatusCode::kResourceExhausted;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::Status ErrnoStatus(absl::string_view what, int err) {
  return absl::Status(CodeForErrno(err), absl::StrCat(what, ": ", std::strerror(err)));
}

absl::StatusOr<UniqueFd> OpenFile(const std::string& path, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus(path, errno);
  return UniqueFd(fd);
}

absl::Status PreadFull(int fd, std::span<uint8_t> buf, int64_t offset) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::pread(fd, buf.data() + done, buf.size() - done, offset + done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", errno);
    }
    if (n == 0) {
      return absl::OutOfRangeError(
          absl::StrCat("unexpected end of file at offset ", offset + static_cast<int64_t>(done)));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status PwriteFull(int fd, std::span<const uint8_t> buf, int64_t offset) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::pwrite(fd, buf.data() + done, buf.size() - done, offset + done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", errno);
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, std::span<const uint8_t> buf) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::write(fd, buf.data() + done, buf.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", errno);
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> FileSize(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus("stat", errno);
  return static_cast<int64_t>(st.st_size);
}

absl::Status CopyRangeToStream(int in_fd, int64_t offset, int64_t length, int out_fd) {
  off_t off = offset;
  int64_t left = length;
  // sendfile works for any output since Linux 2.6.33; fall back for the rare
  // outputs it refuses (e.g. some ttys, O_APPEND files).
  while (left > 0) {
    ssize_t n =
        ::sendfile(out_fd, in_fd, &off, static_cast<size_t>(std::min<int64_t>(left, 1 << 30)));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL || errno == ENOSYS) break;
      return ErrnoStatus("write", errno);
    }
    if (n == 0) return absl::OutOfRangeError("unexpected end of file");
    left -= n;
  }
  std::vector<uint8_t> buf(std::min<int64_t>(left, kCopyChunk));
  while (left > 0) {
    size_t want = static_cast<size_t>(std::min<int64_t>(left, buf.size()));
    if (absl::Status st = PreadFull(in_fd, std::span(buf.data(), want), off); !st.ok()) return st;
    if (absl::Status st = WriteAll(out_fd, std::span<const uint8_t>(buf.data(), want)); !st.ok())
      return st;
    off += want;
    left -= want;
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> CopyStreamToOffset(int in_fd, int out_fd, int64_t out_offset) {
  std::vector<uint8_t> buf(kCopyChunk);
  int64_t total = 0;
  for (;;) {
    ssize_t n = ::read(in_fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", errno);
    }
    if (n == 0) break;
    if (absl::Status st =
            PwriteFull(out_fd, std::span<const uint8_t>(buf.data(), n), out_offset + total);
        !st.ok())
      return st;
    total += n;
  }
  return total;
}

}  // namespace berth
