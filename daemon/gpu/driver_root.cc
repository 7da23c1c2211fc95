#include "daemon/gpu/driver_root.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::daemon::gpu {

absl::StatusOr<DriverRoot> DriverRoot::Open(const std::string& path) {
  if (path.empty() || path.front() != '/') {
    return absl::InvalidArgumentError(absl::StrCat("driver root '", path, "' is not absolute"));
  }
  auto fd = OpenFile(path, O_PATH | O_DIRECTORY);
  if (!fd.ok()) return Annotate(fd.status(), "opening the GPU driver root");
  std::string clean = path;
  while (clean.size() > 1 && clean.back() == '/') clean.pop_back();
  return DriverRoot(std::move(clean), *std::move(fd));
}

absl::StatusOr<UniqueFd> DriverRoot::OpenPath(absl::string_view abs, int flags) const {
  size_t skip = abs.find_first_not_of('/');
  std::string rel = skip == absl::string_view::npos ? "." : std::string(abs.substr(skip));
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  // EAGAIN: a concurrent rename made RESOLVE_IN_ROOT unsure; bounded retries.
  long fd = -1;
  for (int attempt = 0; attempt < 64; ++attempt) {
    fd = ::syscall(SYS_openat2, fd_.get(), rel.c_str(), &how, sizeof how);
    if (fd >= 0 || (errno != EINTR && errno != EAGAIN)) break;
  }
  if (fd < 0) return ErrnoStatus(Display(abs), errno);
  return UniqueFd(static_cast<int>(fd));
}

std::string DriverRoot::Display(absl::string_view abs) const {
  return is_host() ? std::string(abs) : absl::StrCat(path_, abs);
}

}  // namespace berth::daemon::gpu
