#include "daemon/launch/mount_api.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_io.h"

namespace berth::daemon::launch {
namespace {

// The messages the kernel queued on an fs context ("e tmpfs: Bad value for
// 'size'"), joined; they explain an EINVAL far better than errno does.
std::string DrainFsLog(int fs_fd) {
  std::string log;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(fs_fd, buf, sizeof(buf));
    if (n <= 0) break;
    if (!log.empty()) log += "; ";
    absl::StrAppend(
        &log, absl::StripTrailingAsciiWhitespace(absl::string_view(buf, static_cast<size_t>(n))));
  }
  return log;
}

absl::Status FsError(const std::string& fstype, const std::string& step, int fs_fd, int err) {
  std::string log = DrainFsLog(fs_fd);
  absl::Status st = ErrnoStatus(absl::StrCat(fstype, ": ", step), err);
  if (log.empty()) return st;
  return absl::Status(st.code(), absl::StrCat(st.message(), " (", log, ")"));
}

}  // namespace

absl::StatusOr<UniqueFd> NewDetachedMount(const std::string& fstype,
                                          const std::vector<FsOption>& options,
                                          uint64_t attributes) {
  UniqueFd fs(::fsopen(fstype.c_str(), FSOPEN_CLOEXEC));
  if (!fs) return ErrnoStatus(absl::StrCat("fsopen ", fstype), errno);
  for (const FsOption& option : options) {
    int rc = option.value.empty()
                 ? ::fsconfig(fs.get(), FSCONFIG_SET_FLAG, option.key.c_str(), nullptr, 0)
                 : ::fsconfig(fs.get(), FSCONFIG_SET_STRING, option.key.c_str(),
                              option.value.c_str(), 0);
    if (rc != 0) return FsError(fstype, absl::StrCat("option ", option.key), fs.get(), errno);
  }
  if (::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return FsError(fstype, "creating the filesystem", fs.get(), errno);
  }
  UniqueFd mnt(::fsmount(fs.get(), FSMOUNT_CLOEXEC, static_cast<unsigned>(attributes)));
  if (!mnt) return FsError(fstype, "fsmount", fs.get(), errno);
  return mnt;
}

absl::StatusOr<UniqueFd> CloneDetached(int dirfd, const std::string& path, bool recursive) {
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
  if (path.empty()) flags |= AT_EMPTY_PATH;
  if (recursive) flags |= AT_RECURSIVE;
  UniqueFd mnt(::open_tree(dirfd, path.c_str(), flags));
  if (!mnt) return ErrnoStatus("open_tree", errno);
  return mnt;
}

absl::Status SetMountAttributes(int mount_fd, uint64_t attributes, uint64_t propagation,
                                bool recursive, int userns_fd) {
  mount_attr attr{};
  attr.attr_set = attributes;
  if (userns_fd >= 0) {
    attr.attr_set |= MOUNT_ATTR_IDMAP;
    attr.userns_fd = static_cast<uint64_t>(userns_fd);
  }
  attr.propagation = propagation;
  unsigned flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
  if (::mount_setattr(mount_fd, "", flags, &attr, sizeof(attr)) != 0) {
    return ErrnoStatus("mount_setattr", errno);
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> OpenAt2(int dirfd, const std::string& path, uint64_t flags,
                                 uint64_t resolve, mode_t mode) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.mode = mode;
  how.resolve = resolve;
  int fd;
  do {
    fd = static_cast<int>(::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof(how)));
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus(path, errno);
  return UniqueFd(fd);
}

}  // namespace berth::daemon::launch
