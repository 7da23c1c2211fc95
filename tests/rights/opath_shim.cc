// An LD_PRELOAD shim that makes the real `berth` client hand the daemon
// O_PATH descriptors, as the outside review's 30-line shim did: opening a
// file or directory with O_PATH needs no permission on it, only the right to
// walk to it, so a daemon that reads through such a descriptor as root reads
// what the caller could not.
//   BERTH_SHIM_OPATH_PATH=P  open()/openat() of exactly P opens it O_PATH
//                            (keeping O_DIRECTORY/O_NOFOLLOW/O_CLOEXEC)
//   BERTH_SHIM_OPATH_FDS=0,2 the descriptors at these positions of the
//                            connection preamble (SCM_RIGHTS) are replaced by
//                            O_PATH descriptors for the same files
//   BERTH_SHIM_RDONLY_FDS=0  ...by read-only descriptors for them
// Test code only: never built into anything shipped.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

namespace {

bool IsTarget(const char* path) {
  const char* target = getenv("BERTH_SHIM_OPATH_PATH");
  return target != nullptr && path != nullptr && strcmp(path, target) == 0;
}

int PathFlags(int flags) {
  return O_PATH | (flags & (O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

bool ListedIndex(const char* variable, size_t index) {
  const char* list = getenv(variable);
  if (list == nullptr) return false;
  for (const char* p = list; *p != '\0';) {
    char* end = nullptr;
    unsigned long n = strtoul(p, &end, 10);
    if (end == p) return false;
    if (n == index) return true;
    p = *end == ',' ? end + 1 : end;
  }
  return false;
}

template <typename Fn>
Fn Next(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

int ModeArg(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, int) : 0;
}

// Every open below ends here, in libc's openat.
int OpenAt(int dir, const char* path, int flags, int mode) {
  static auto real = Next<int (*)(int, const char*, int, ...)>("openat");
  return IsTarget(path) ? real(dir, path, PathFlags(flags)) : real(dir, path, flags, mode);
}

}  // namespace

extern "C" {

int open(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  int mode = ModeArg(flags, ap);
  va_end(ap);
  return OpenAt(AT_FDCWD, path, flags, mode);
}

int open64(const char* path, int flags, ...) __attribute__((alias("open")));

int openat(int dir, const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  int mode = ModeArg(flags, ap);
  va_end(ap);
  return OpenAt(dir, path, flags, mode);
}

ssize_t sendmsg(int sock, const struct msghdr* msg, int flags) {
  static auto real = Next<ssize_t (*)(int, const struct msghdr*, int)>("sendmsg");
  if (msg == nullptr) return real(sock, msg, flags);
  size_t index = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(msg); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr*>(msg), c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i, ++index) {
      int reopen = ListedIndex("BERTH_SHIM_OPATH_FDS", index)    ? O_PATH
                   : ListedIndex("BERTH_SHIM_RDONLY_FDS", index) ? O_RDONLY
                                                                 : -1;
      if (reopen < 0) continue;
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      char proc[64];
      snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
      int new_fd = Next<int (*)(const char*, int, ...)>("open")(proc, reopen | O_CLOEXEC);
      if (new_fd >= 0) memcpy(CMSG_DATA(c) + i * sizeof(int), &new_fd, sizeof new_fd);
    }
  }
  return real(sock, msg, flags);
}

}  // extern "C"
