#include "client/inspect/directory_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::inspect {

absl::StatusOr<UniqueFd> DirectoryReader::OpenIn(absl::string_view path, int flags) {
  const size_t start = path.find_first_not_of('/');
  const std::string relative =
      start == absl::string_view::npos ? std::string(".") : std::string(path.substr(start));
  open_how how{};
  // O_NONBLOCK: a FIFO in the sandbox must not hang inspect.
  // openat2 takes O_PATH with nothing but O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW.
  const int extra = (flags & O_PATH) ? 0 : O_NOCTTY | O_NONBLOCK;
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC | extra);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, dir_.get(), relative.c_str(), &how, sizeof how));
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return absl::NotFoundError(absl::StrCat(path, ": not found"));
    }
    return ErrnoStatus(absl::StrCat(path), errno);
  }
  return UniqueFd(fd);
}

absl::StatusOr<EntryType> DirectoryReader::Stat(absl::string_view path) {
  auto fd = OpenIn(path, O_PATH);
  if (absl::IsNotFound(fd.status())) return EntryType::kMissing;
  if (!fd.ok()) return fd.status();
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return ErrnoStatus(absl::StrCat(path), errno);
  return S_ISREG(st.st_mode)   ? EntryType::kRegular
         : S_ISDIR(st.st_mode) ? EntryType::kDirectory
                               : EntryType::kOther;
}

absl::StatusOr<std::string> DirectoryReader::ReadFile(absl::string_view path, int64_t max_size) {
  ASSIGN_OR_RETURN(EntryType type, Stat(path));
  if (type != EntryType::kRegular) {
    return absl::NotFoundError(absl::StrCat(path, ": not a regular file"));
  }
  ASSIGN_OR_RETURN(UniqueFd fd, OpenIn(path, O_RDONLY));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(absl::StrCat(path), errno);
  if (!S_ISREG(st.st_mode)) return absl::NotFoundError(absl::StrCat(path, ": not a regular file"));
  if (st.st_size > max_size) {
    return absl::ResourceExhaustedError(absl::StrCat(path, " is larger than ", max_size, " bytes"));
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  RETURN_IF_ERROR_CTX(
      PreadFull(fd.get(), {reinterpret_cast<uint8_t*>(data.data()), data.size()}, 0), path);
  return data;
}

absl::StatusOr<std::vector<std::string>> DirectoryReader::ListDirectory(absl::string_view path) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenIn(path, O_RDONLY | O_DIRECTORY));
  DIR* dir = ::fdopendir(fd.get());
  if (dir == nullptr) return ErrnoStatus(absl::StrCat(path), errno);
  fd.Release();  // closedir closes it
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  const int err = errno;
  ::closedir(dir);
  if (err != 0) return ErrnoStatus(absl::StrCat(path), err);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace berth::inspect
