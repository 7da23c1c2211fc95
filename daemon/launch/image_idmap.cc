#include "daemon/launch/image_idmap.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/launch/mount_api.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::launch {
namespace {

constexpr uint64_t kIdLimit = std::numeric_limits<uint32_t>::max();  // (uid_t)-1, never mapped
constexpr size_t kStackBytes = 64 << 10;

// The namespace's only process. It shares the daemon's memory (CLONE_VM:
// nothing is copied) and its descriptor table (CLONE_FILES): a process with
// a copy of the table would hold every descriptor another thread had open at
// that moment, the pipe another thread waits on included, and two such
// processes made at once would wait for each other forever. It blocks in
// pause() with every signal blocked until the daemon kills it. Raw system
// calls only: errno is the calling thread's.
int HoldUntilKilled(void*) {
  for (;;) syscall(SYS_pause);
  return 0;
}

absl::Status WriteMap(pid_t pid, const char* name, const std::string& text) {
  std::string path = absl::StrCat("/proc/", pid, "/", name);
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_WRONLY));
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus(path, errno);
  }
  return absl::OkStatus();
}

// 1: the kernel idmaps squashfs; -1: it refused; 0: not tried yet.
std::atomic<int> kernel_verdict{0};

}  // namespace

bool ImageMayBeIdmapped(int image_fd) {
  struct statfs fs {};
  return ::fstatfs(image_fd, &fs) == 0 && fs.f_type == SQUASHFS_MAGIC;
}

std::string PlainUserImageMap(uint32_t own) {
  std::string text = absl::StrCat("0 ", own, " 1\n");
  if (own > 1) absl::StrAppend(&text, "1 1 ", own - 1, "\n");
  uint64_t next = uint64_t{own} + 1;
  if (next < kIdLimit) absl::StrAppend(&text, next, " ", next, " ", kIdLimit - next, "\n");
  return text;
}

absl::StatusOr<UniqueFd> MakeMappedUserNamespace(const std::string& uid_map,
                                                 const std::string& gid_map) {
  auto stack = std::make_unique<char[]>(kStackBytes);
  // No daemon signal handler may run on the child's stack: it keeps the
  // full mask, and only SIGKILL ends it.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = ::clone(HoldUntilKilled, stack.get() + kStackBytes,
                      CLONE_NEWUSER | CLONE_VM | CLONE_FILES | SIGCHLD, nullptr);
  int err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return ErrnoStatus("creating the image's idmap user namespace", err);
  absl::Status st = WriteMap(pid, "gid_map", gid_map);
  if (st.ok()) st = WriteMap(pid, "uid_map", uid_map);
  UniqueFd ns;
  if (st.ok()) {
    auto opened = OpenFile(absl::StrCat("/proc/", pid, "/ns/user"), O_RDONLY | O_CLOEXEC);
    if (opened.ok()) ns = std::move(*opened);
    st = opened.status();
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, __WALL) < 0 && errno == EINTR) {
  }
  if (!st.ok()) return Annotate(st, "the image's idmap user namespace");
  return ns;
}

bool KernelRefusedIdmap() {
  return kernel_verdict.load() < 0;
}

bool KernelIdmapsImage(int image_fd, int userns_fd) {
  int verdict = kernel_verdict.load();
  if (verdict != 0) return verdict > 0;
  auto clone = CloneDetached(image_fd, "", /*recursive=*/false);
  if (!clone.ok()) return false;  // not the kernel's verdict; the launch will say
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  if (::mount_setattr(clone->get(), "", AT_EMPTY_PATH, &attr, sizeof(attr)) == 0) {
    kernel_verdict.store(1);
    return true;
  }
  int err = errno;
  // EINVAL: the filesystem does not allow idmapped mounts; ENOSYS: no
  // mount_setattr. Anything else says nothing of the kernel.
  if (err != EINVAL && err != ENOSYS) return false;
  if (kernel_verdict.exchange(-1) == 0) {
    spdlog::warn(
        "the kernel refused an idmapped mount of a squashfs image ({}): image files keep their "
        "host owners in --fakeroot containers and writable layers (idmapped squashfs mounts "
        "need Linux 6.2)",
        std::strerror(err));
  }
  return false;
}

namespace {

// The owner ids 0 become uid/gid; others stay (-1: unchanged).
uid_t NewUid(const struct stat& st, uid_t uid) {
  return st.st_uid == 0 ? uid : static_cast<uid_t>(-1);
}
gid_t NewGid(const struct stat& st, gid_t gid) {
  return st.st_gid == 0 ? gid : static_cast<gid_t>(-1);
}
bool RootOwned(const struct stat& st) {
  return st.st_uid == 0 || st.st_gid == 0;
}

// One directory of the walk: itself and its entries but subdirectories,
// whose paths (relative to the walk's root) join `pending`.
absl::Status GiveDirectory(int fd, const std::string& rel, const std::string& what, uid_t uid,
                           gid_t gid, std::vector<std::string>& pending) {
  std::string here = rel.empty() ? what : absl::StrCat(what, "/", rel);
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus(here, errno);
  if (RootOwned(st) && ::fchown(fd, NewUid(st, uid), NewGid(st, gid)) != 0) {
    return ErrnoStatus(here, errno);
  }
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus(here, err);
  }
  absl::Status result = absl::OkStatus();
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (::fstatat(::dirfd(dir), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      pending.push_back(rel.empty() ? name : absl::StrCat(rel, "/", name));
      continue;
    }
    if (RootOwned(st) && ::fchownat(::dirfd(dir), name.c_str(), NewUid(st, uid), NewGid(st, gid),
                                    AT_SYMLINK_NOFOLLOW) != 0) {
      result = ErrnoStatus(absl::StrCat(here, "/", name), errno);
      break;
    }
  }
  ::closedir(dir);  // closes fd
  return result;
}

}  // namespace

// Iterative, reopening each directory from the root: a walk holds two
// descriptors whatever the depth (a bind destination may nest a couple of
// thousand directories, and berthd serves every user at once).
absl::Status GiveImageRootOwner(int dir_fd, const std::string& what, uid_t uid, gid_t gid) {
  std::vector<std::string> pending = {""};
  while (!pending.empty()) {
    std::string rel = std::move(pending.back());
    pending.pop_back();
    UniqueFd fd;
    if (rel.empty()) {
      fd.Reset(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!fd) return ErrnoStatus(what, errno);
    } else {
      auto opened =
          OpenAt2(dir_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
                  RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
      if (!opened.ok()) return Annotate(opened.status(), absl::StrCat(what, "/", rel));
      fd = std::move(*opened);
    }
    RETURN_IF_ERROR(GiveDirectory(fd.Release(), rel, what, uid, gid, pending));
  }
  return absl::OkStatus();
}

}  // namespace berth::daemon::launch
