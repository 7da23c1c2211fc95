#include "daemon/policy/config_file.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <span>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::daemon::policy {

constexpr off_t kMaxPolicyFileBytes = 1 << 20;

absl::StatusOr<std::optional<std::string>> ReadPolicyFile(const std::string& path,
                                                          bool require_root_owned) {
  auto fd = OpenFile(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  if (!fd.ok() && absl::IsNotFound(fd.status())) return std::nullopt;
  if (!fd.ok()) return fd.status();
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return ErrnoStatus(path, errno);
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(path + ": not a regular file");
  if (require_root_owned && (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)) {
    return absl::PermissionDeniedError(absl::StrCat(
        path, ": must be owned by root and not writable by group or others (chown root ", path,
        "; chmod go-w ", path, ")"));
  }
  if (st.st_size > kMaxPolicyFileBytes) {
    return absl::InvalidArgumentError(path + ": larger than 1 MiB");
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  RETURN_IF_ERROR(
      PreadFull(fd->get(), std::span(reinterpret_cast<uint8_t*>(text.data()), text.size()), 0));
  return text;
}

}  // namespace berth::daemon::policy
