#include "client/output/temp_beside.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"

namespace berth::client {
namespace {

std::string TempName(const std::string& path) {
  return absl::StrCat(DirOf(path), "/.", BaseOf(path), ".berth-XXXXXX");
}

mode_t ExecutableModeForUmask() {
  mode_t mask = ::umask(0);
  ::umask(mask);
  return 0755 & ~mask;
}

}  // namespace

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string BaseOf(const std::string& path) {
  return path.substr(path.rfind('/') + 1);
}

absl::StatusOr<std::pair<UniqueFd, std::string>> CreateTempFileBeside(const std::string& path) {
  std::string tmp = TempName(path);
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return ErrnoStatus(absl::StrCat("creating ", tmp), errno);
  ::fchmod(fd, ExecutableModeForUmask());
  return std::make_pair(UniqueFd(fd), tmp);
}

absl::StatusOr<std::pair<UniqueFd, std::string>> CreateTempDirBeside(const std::string& path) {
  std::string tmp = TempName(path);
  if (::mkdtemp(tmp.data()) == nullptr) return ErrnoStatus(absl::StrCat("creating ", tmp), errno);
  ::chmod(tmp.c_str(), ExecutableModeForUmask());
  auto fd = OpenFile(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!fd.ok()) {
    ::rmdir(tmp.c_str());
    return fd.status();
  }
  return std::make_pair(*std::move(fd), tmp);
}

}  // namespace berth::client
